//! Webhook endpoints: where a tenant receives signed notifications of what happened
//! (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! A secret (`whsec_…`) is shown once, when an endpoint is created or its secret rotated; it is
//! stored sealed under the master key. After a rotation the previous secret keeps signing for
//! `[webhooks] secret_overlap_secs`, and each message carries both signatures meanwhile. URLs
//! must pass the SSRF guard (see `webhooks::guard`). `GET /v1/webhooks/{id}/deliveries` is the
//! endpoint's delivery log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{check_limit, paginate, AppJson, AppQuery};
use super::rate_limit::refuse;
use super::AppState;
use crate::domain::WebhookEndpointId;
use crate::store::{NewWebhookEndpoint, WebhookAttemptLog, WebhookEndpoint, WebhookEndpointPatch};
use crate::webhooks::guard::{self, AllowList, GuardError};
use crate::webhooks::{sign, EVENT_TYPES};

/// Longest accepted endpoint URL.
const MAX_URL_LEN: usize = 2000;

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

/// 422 unless the URL passes the SSRF guard.
async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::validation(
            "invalid_webhook_url",
            format!("url must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let allow = AllowList::parse(&state.webhooks.allow_private).unwrap_or_default();
    match guard::check(url, &allow).await {
        Ok(_) => Ok(url.to_owned()),
        Err(e @ GuardError::Forbidden(_)) => {
            Err(ApiError::validation("webhook_url_forbidden", e.to_string()))
        }
        Err(e) => Err(ApiError::validation("invalid_webhook_url", e.to_string())),
    }
}

/// 422 `invalid_event_type` unless every type is known; sorted and deduplicated.
fn event_types(types: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut types = types.unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::validation(
            "invalid_event_type",
            format!(
                "unknown event type `{bad}`; known: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn description(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(d) if d.chars().count() > 500 => Err(ApiError::validation(
            "invalid_description",
            "description must be at most 500 characters",
        )),
        other => Ok(other),
    }
}

fn endpoint_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(raw).ok_or(ApiError::NotFound("webhook"))
}

/// Create a webhook endpoint; its signing secret is shown only in this response.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookIn,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookWithSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `webhook_url_forbidden` (SSRF guard), `invalid_event_type`, `invalid_description`", body = ErrorBody),
        (status = 429, description = "The tenant has `[webhooks] max_endpoints` endpoints (`quota_exceeded`) or exceeded its request rate", body = ErrorBody),
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AppJson(body): AppJson<WebhookIn>,
) -> Result<(StatusCode, axum::Json<WebhookWithSecret>), ApiError> {
    // Cheap checks first: resolving the URL is the slow one.
    let event_types = event_types(body.event_types)?;
    let description = description(body.description)?;
    let url = checked_url(&state, &body.url).await?;
    let id = WebhookEndpointId::generate();
    let secret = sign::generate_secret();
    let new = NewWebhookEndpoint {
        secret_sealed: state.kek.seal(secret.as_bytes(), id.as_str()),
        id: id.to_string(),
        tenant,
        url,
        description,
        event_types,
    };
    let max = state.webhooks.max_endpoints;
    let endpoint = state
        .store
        .create_webhook_endpoint(&new, max)
        .await?
        .ok_or_else(|| {
            refuse(
                "webhook_endpoints",
                "quota_exceeded",
                format!("a tenant may have at most {max} webhook endpoints"),
                60,
            )
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookWithSecret {
            endpoint: endpoint.into(),
            secret,
        }),
    ))
}

/// List the tenant's webhook endpoints.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Endpoints, oldest first", body = WebhookList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
async fn list_webhooks(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<axum::Json<WebhookList>, ApiError> {
    let items = state.store.list_webhook_endpoints(&tenant).await?;
    Ok(axum::Json(WebhookList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Get one webhook endpoint (never its secret).
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn get_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookOut>, ApiError> {
    let id = endpoint_id(&id)?;
    let endpoint = state
        .store
        .get_webhook_endpoint(&tenant, id.as_str())
        .await?;
    Ok(axum::Json(
        endpoint.ok_or(ApiError::NotFound("webhook"))?.into(),
    ))
}

/// Change a webhook endpoint's URL, description or event types.
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookPatchIn,
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = WebhookOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `webhook_url_forbidden`, `invalid_event_type`, `invalid_description`", body = ErrorBody),
    )
)]
async fn update_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(body): AppJson<WebhookPatchIn>,
) -> Result<axum::Json<WebhookOut>, ApiError> {
    let id = endpoint_id(&id)?;
    let description = match body.description {
        Some(d) => Some(description(d)?),
        None => None,
    };
    let event_types = match body.event_types {
        Some(types) => Some(event_types(Some(types))?),
        None => None,
    };
    let url = match body.url {
        Some(url) => Some(checked_url(&state, &url).await?),
        None => None,
    };
    let patch = WebhookEndpointPatch {
        url,
        description,
        event_types,
    };
    let endpoint = state
        .store
        .update_webhook_endpoint(&tenant, id.as_str(), &patch)
        .await?;
    Ok(axum::Json(
        endpoint.ok_or(ApiError::NotFound("webhook"))?.into(),
    ))
}

/// Delete a webhook endpoint; its pending deliveries are given up.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(&id)?;
    if state
        .store
        .delete_webhook_endpoint(&tenant, id.as_str())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook"))
    }
}

/// Rotate an endpoint's signing secret. The new secret is shown only in this response; the
/// previous one keeps signing (both signatures sent) for the configured overlap.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Rotated, with the new secret", body = WebhookWithSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookWithSecret>, ApiError> {
    let id = endpoint_id(&id)?;
    let secret = sign::generate_secret();
    let sealed = state.kek.seal(secret.as_bytes(), id.as_str());
    let overlap = chrono::Duration::seconds(state.webhooks.secret_overlap_secs as i64);
    let endpoint = state
        .store
        .rotate_webhook_secret(&tenant, id.as_str(), &sealed, Utc::now() + overlap)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    tracing::info!(tenant.id = %tenant, webhook.id = %id, "webhook secret rotated");
    Ok(axum::Json(WebhookWithSecret {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// An endpoint's delivery log, newest first: per event, attempts, last status and next retry.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), DeliveryParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The delivery log", body = WebhookDeliveryList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<DeliveryParams>,
) -> Result<axum::Json<WebhookDeliveryList>, ApiError> {
    let id = endpoint_id(&id)?;
    let limit = check_limit(params.limit)?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor is not a next_cursor value returned by this endpoint",
            )
        })?),
    };
    let rows = state
        .store
        .list_webhook_attempts(&tenant, id.as_str(), before, limit + 1)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let (rows, next_cursor) = paginate(rows, limit, |r| r.id.to_string());
    Ok(axum::Json(WebhookDeliveryList {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_webhook_deliveries))
}
