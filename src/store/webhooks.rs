//! Signed webhooks to tenants: endpoints, the event outbox, the per-endpoint attempt queue
//! (which is also the delivery log) and the capture cursors.
//!
//! [`WebhookStore`] is a supertrait of [`Store`](super::Store); its SQL is portable and written
//! once in `webhooks_sql.rs`. Events are captured from the state tables the other stores write
//! (completed announcements, failed deliveries, the consent log, trigger announcements) by a
//! cursor per source, so no other store's code changes to emit them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::TenantId;

/// An endpoint about to be stored.
pub struct NewWebhookEndpoint {
    pub id: String,
    pub tenant: TenantId,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered to it; empty means every type.
    pub event_types: Vec<String>,
    /// The signing secret sealed under the master key, bound to `id`.
    pub secret_sealed: Vec<u8>,
}

/// An endpoint as listed (never its secret).
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone)]
pub struct WebhookAttemptLog {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending rows only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A due attempt claimed under a lease, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedWebhook {
    pub attempt_id: i64,
    pub event_id: String,
    pub payload: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    /// The previous secret while its overlap lasts.
    pub previous_sealed: Option<Vec<u8>>,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum WebhookSettle {
    Delivered {
        status_code: i32,
    },
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        status_code: Option<i32>,
        error: String,
    },
    /// The retry ladder is exhausted (or the endpoint is gone): given up.
    Failed {
        status_code: Option<i32>,
        error: String,
    },
}

/// The state tables events are captured from, each read in time order by its own cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// Announcements that reached `completed`.
    AnnouncementsCompleted,
    /// Deliveries that ended `failed`.
    DeliveriesFailed,
    /// Consent-log subscribe / unsubscribe rows.
    ConsentLog,
    /// Announcements created by a trigger's match.
    TriggerMatches,
}

impl EventSource {
    pub const ALL: [EventSource; 4] = [
        EventSource::AnnouncementsCompleted,
        EventSource::DeliveriesFailed,
        EventSource::ConsentLog,
        EventSource::TriggerMatches,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventSource::AnnouncementsCompleted => "announcements_completed",
            EventSource::DeliveriesFailed => "deliveries_failed",
            EventSource::ConsentLog => "consent_log",
            EventSource::TriggerMatches => "trigger_matches",
        }
    }
}

/// One source row turned into an event (its type and data), with its cursor position.
#[derive(Debug, Clone)]
pub struct CapturedEvent {
    pub at: DateTime<Utc>,
    pub key: String,
    pub tenant: String,
    pub event_type: &'static str,
    /// Names the source row, so capturing it again stores nothing new.
    pub dedupe_key: String,
    pub data: serde_json::Value,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores an endpoint unless the tenant already has `max` live ones (checked under the
    /// tenant row's lock); `None` when the limit is reached.
    async fn create_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        max: u32,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// The tenant's endpoints, oldest first.
    async fn list_webhook_endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>>;
    async fn get_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    async fn update_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &str,
        patch: &WebhookEndpointPatch,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// Soft-deletes an endpoint and gives up its pending attempts; false if absent.
    async fn delete_webhook_endpoint(&self, tenant: &TenantId, id: &str) -> StoreResult<bool>;
    /// Makes `new_sealed` the signing secret; the current one becomes the previous secret,
    /// valid until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &str,
        new_sealed: &[u8],
        previous_until: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// An endpoint's delivery log, newest first, rows with an id below `before` (a cursor).
    async fn list_webhook_attempts(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<WebhookAttemptLog>>>;

    /// Up to `limit` events of `source` after its cursor, up to `until` (the capture lag's
    /// edge); empty when no endpoint exists (nothing to capture for).
    async fn read_webhook_source(
        &self,
        source: EventSource,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<CapturedEvent>>;
    /// Stores the events (each once; only for tenants with an endpoint taking its type, which
    /// existed when it happened), queues one attempt per such endpoint, and moves the source's
    /// cursor past the last one: all in one transaction. Returns the events newly stored.
    async fn record_webhook_events(
        &self,
        source: EventSource,
        events: &[CapturedEvent],
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Leases up to `limit` due attempts to `owner` until `lease_until`.
    async fn claim_webhooks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedWebhook>>;
    /// Deletes up to `limit` settled attempts last changed before `before`, then up to `limit`
    /// events created before it that no attempt refers to any more; returns the rows deleted.
    async fn purge_webhook_history(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
    /// Settles an attempt still leased to `owner`; false if the lease was lost.
    async fn settle_webhook(
        &self,
        attempt_id: i64,
        owner: &str,
        outcome: &WebhookSettle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
