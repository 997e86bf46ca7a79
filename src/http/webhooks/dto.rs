//! The webhook resource's wire types (endpoint in/patch/out, the secret shown once, the
//! delivery log) and their conversions from store types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::store::{WebhookAttemptLog, WebhookEndpoint};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// `http` or `https` URL receiving POSTs; must resolve to public addresses (unless the
    /// operator allow-lists private ones).
    #[schema(example = "https://example.com/herald-webhooks")]
    pub url: String,
    pub description: Option<String>,
    /// Event types to receive; omitted or empty: all of them.
    #[schema(example = json!(["announcement.completed", "delivery.failed"]))]
    pub event_types: Option<Vec<String>>,
}

/// Fields to change; omitted fields stay, `"description": null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatchIn {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct WebhookOut {
    #[schema(example = "wh_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; empty means all.
    pub event_types: Vec<String>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: answered once, on creation and rotation.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookOut,
    /// The signing secret. Shown only in this response.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookOut>,
}

/// One event's delivery to the endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookDeliveryOut {
    /// The event id (the `webhook-id` header; the same on every retry).
    #[schema(example = "msg_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub event_id: String,
    #[schema(example = "announcement.completed")]
    pub event_type: String,
    /// `pending` (more attempts to come), `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    /// The HTTP status of the last attempt, if the endpoint answered.
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    /// Newest first.
    pub items: Vec<WebhookDeliveryOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl From<WebhookEndpoint> for WebhookOut {
    fn from(e: WebhookEndpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            previous_secret_valid_until: e.previous_until.filter(|until| *until > Utc::now()),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

impl From<WebhookAttemptLog> for WebhookDeliveryOut {
    fn from(a: WebhookAttemptLog) -> Self {
        Self {
            event_id: a.event_id,
            event_type: a.event_type,
            status: a.status,
            attempts: a.attempts,
            last_status_code: a.last_status_code,
            last_error: a.last_error,
            next_attempt_at: a.next_attempt_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}
