//! The delivery half of the webhook store: recording captured events in the outbox with one
//! pending attempt per endpoint that takes them (and moving the source's cursor), claiming due
//! attempts under a lease, settling them, and purging old history. Portable SQL, generic over
//! the [`Dialect`]; `webhooks_sql.rs` delegates the [`WebhookStore`](super::WebhookStore)
//! methods here.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::Dialect;
use super::webhooks::{CapturedEvent, ClaimedWebhook, EventSource, WebhookSettle};
use super::StoreResult;

type Row<DB> = <DB as sqlx::Database>::Row;

/// `(attempt, event, payload, endpoint, url, secret, previous secret, previous until,
/// endpoint deleted at, attempts)`.
pub(super) type ClaimRow = (
    i64,
    String,
    String,
    String,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i32,
);

/// See [`WebhookStore::record_webhook_events`](super::WebhookStore::record_webhook_events).
pub(super) async fn record_events<DB>(
    pool: &Pool<DB>,
    source: EventSource,
    events: &[CapturedEvent],
    now: DateTime<Utc>,
) -> StoreResult<u64>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let Some(last) = events.last() else {
        return Ok(0);
    };
    let mut tx = DB::begin_write(pool).await?;
    let mut stored = 0;
    for event in events {
        let id = format!("msg_{}", ulid::Ulid::new());
        let takes = format!("%\"{}\"%", event.event_type);
        let payload = json!({
            "type": event.event_type,
            "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": event.data,
        })
        .to_string();
        let done = sqlx::query(
            "INSERT INTO webhook_events (id, tenant_id, event_type, dedupe_key, payload, created_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM webhook_endpoints p \
             WHERE p.tenant_id = $2 AND p.deleted_at IS NULL AND p.created_at <= $7 \
             AND (p.event_types = '[]' OR p.event_types LIKE $8)) \
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(event.tenant.as_str())
        .bind(event.event_type)
        .bind(event.dedupe_key.as_str())
        .bind(payload.as_str())
        .bind(now)
        .bind(event.at)
        .bind(takes.as_str())
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&done) == 0 {
            continue;
        }
        stored += 1;
        sqlx::query(
            "INSERT INTO webhook_attempts (event_id, endpoint_id, status, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT $1, p.id, 'pending', 0, $3, $3, $3 FROM webhook_endpoints p \
             WHERE p.tenant_id = $2 AND p.deleted_at IS NULL AND p.created_at <= $4 \
             AND (p.event_types = '[]' OR p.event_types LIKE $5)",
        )
        .bind(id.as_str())
        .bind(event.tenant.as_str())
        .bind(now)
        .bind(event.at)
        .bind(takes.as_str())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO webhook_cursors (source, at, key) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO UPDATE SET at = excluded.at, key = excluded.key",
    )
    .bind(source.name())
    .bind(last.at)
    .bind(last.key.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// See [`WebhookStore::claim_webhooks`](super::WebhookStore::claim_webhooks). An attempt whose
/// endpoint was deleted after it was queued is settled `failed` instead of returned.
pub(super) async fn claim<DB>(
    pool: &Pool<DB>,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<ClaimedWebhook>>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    Option<i32>: Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    Option<String>: Type<DB>,
    for<'r> ClaimRow: FromRow<'r, Row<DB>>,
{
    // The outer conditions repeat the inner ones: on Postgres a row another replica
    // leased meanwhile is re-checked against them and skipped.
    sqlx::query(
        "UPDATE webhook_attempts SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM webhook_attempts WHERE status = 'pending' \
         AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
         ORDER BY next_attempt_at, id LIMIT $4) \
         AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "SELECT w.id, w.event_id, e.payload, w.endpoint_id, p.url, p.secret_sealed, \
         p.previous_secret_sealed, p.previous_until, p.deleted_at, w.attempts \
         FROM webhook_attempts w JOIN webhook_events e ON e.id = w.event_id \
         JOIN webhook_endpoints p ON p.id = w.endpoint_id \
         WHERE w.lease_owner = $1 AND w.status = 'pending' ORDER BY w.id",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        if r.8.is_some() {
            let gone = WebhookSettle::Failed {
                status_code: None,
                error: "endpoint deleted".into(),
            };
            settle(pool, r.0, owner, &gone, now).await?;
            continue;
        }
        let previous_sealed = r.6.filter(|_| r.7.is_some_and(|until| until > now));
        claimed.push(ClaimedWebhook {
            attempt_id: r.0,
            event_id: r.1,
            payload: r.2,
            endpoint_id: r.3,
            url: r.4,
            secret_sealed: r.5,
            previous_sealed,
            attempts: r.9,
        });
    }
    Ok(claimed)
}

/// See [`WebhookStore::purge_webhook_history`](super::WebhookStore::purge_webhook_history).
pub(super) async fn purge<DB>(
    pool: &Pool<DB>,
    before: DateTime<Utc>,
    limit: u32,
) -> StoreResult<u64>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let attempts = sqlx::query(
        "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts \
         WHERE status <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    let events = sqlx::query(
        "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
         WHERE e.created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhook_attempts w WHERE w.event_id = e.id) \
         ORDER BY e.created_at LIMIT $2)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    Ok(DB::rows_affected(&attempts) + DB::rows_affected(&events))
}

/// See [`WebhookStore::settle_webhook`](super::WebhookStore::settle_webhook).
pub(super) async fn settle<DB>(
    pool: &Pool<DB>,
    attempt_id: i64,
    owner: &str,
    outcome: &WebhookSettle,
    now: DateTime<Utc>,
) -> StoreResult<bool>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    Option<i32>: Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    Option<String>: Type<DB>,
{
    let (status, next, code, error) = match outcome {
        WebhookSettle::Delivered { status_code } => ("delivered", now, Some(*status_code), None),
        WebhookSettle::Retry {
            at,
            status_code,
            error,
        } => ("pending", *at, *status_code, Some(error.clone())),
        WebhookSettle::Failed { status_code, error } => {
            ("failed", now, *status_code, Some(error.clone()))
        }
    };
    let done = sqlx::query(
        "UPDATE webhook_attempts SET status = $3, attempts = attempts + 1, \
         next_attempt_at = $4, last_status_code = $5, last_error = $6, lease_owner = NULL, \
         lease_until = NULL, updated_at = $7 \
         WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
    )
    .bind(attempt_id)
    .bind(owner)
    .bind(status)
    .bind(next)
    .bind(code)
    .bind(error)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(DB::rows_affected(&done) == 1)
}
