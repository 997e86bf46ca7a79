//! The capture half of the webhook store: each event source (see
//! [`EventSource`](super::EventSource)) read in time order after its cursor, up to the capture
//! lag's edge, and turned into [`CapturedEvent`]s. Portable SQL, generic over the [`Dialect`].

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::Dialect;
use super::webhooks::{CapturedEvent, EventSource};
use super::StoreResult;

type Row<DB> = <DB as sqlx::Database>::Row;

/// `(announcement completed at, id, tenant, channel, total, delivered, failed, skipped)`.
pub(super) type CompletedRow = (DateTime<Utc>, String, String, String, i64, i64, i64, i64);
/// `(failed at, delivery id, tenant, announcement, channel, address, reason, attempts)`.
pub(super) type FailedRow = (
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
);
/// `(logged at, log id, tenant, channel, address, action, source)`.
pub(super) type ConsentRow = (
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    String,
    String,
);
/// `(announced at, announcement, tenant, channel, trigger, chain, tx hash, block, log index)`.
pub(super) type MatchRow = (
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    i64,
    Vec<u8>,
    i64,
    i64,
);
/// Only tenants with a live endpoint have events captured.
const HAS_ENDPOINT: &str = "EXISTS (SELECT 1 FROM webhook_endpoints p \
     WHERE p.tenant_id = {tenant} AND p.deleted_at IS NULL)";

fn has_endpoint(tenant: &str) -> String {
    HAS_ENDPOINT.replace("{tenant}", tenant)
}

/// Up to `limit` events of `source` after its cursor, up to `until`; empty when no endpoint
/// exists (nothing to capture for).
pub(super) async fn read_source<DB>(
    pool: &Pool<DB>,
    source: EventSource,
    until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<CapturedEvent>>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> CompletedRow: FromRow<'r, Row<DB>>,
    for<'r> FailedRow: FromRow<'r, Row<DB>>,
    for<'r> ConsentRow: FromRow<'r, Row<DB>>,
    for<'r> MatchRow: FromRow<'r, Row<DB>>,
    for<'r> (DateTime<Utc>, String): FromRow<'r, Row<DB>>,
    for<'r> (DateTime<Utc>,): FromRow<'r, Row<DB>>,
{
    let cursor: Option<(DateTime<Utc>, String)> =
        sqlx::query_as("SELECT at, key FROM webhook_cursors WHERE source = $1")
            .bind(source.name())
            .fetch_optional(pool)
            .await?;
    let (after, key) = match cursor {
        Some(c) => c,
        None => {
            // Nothing happened before the first endpoint existed that anyone could want.
            let first: Option<(DateTime<Utc>,)> = sqlx::query_as(
                "SELECT created_at FROM webhook_endpoints ORDER BY created_at LIMIT 1",
            )
            .fetch_optional(pool)
            .await?;
            let Some((first,)) = first else {
                return Ok(Vec::new());
            };
            let key = if source == EventSource::DeliveriesFailed {
                "0"
            } else {
                ""
            };
            (first - chrono::Duration::seconds(1), key.to_owned())
        }
    };
    let limit = i64::from(limit);
    let events = match source {
        EventSource::AnnouncementsCompleted => {
            let sql = format!(
                    "SELECT a.updated_at, a.id, a.tenant_id, a.channel_id, CAST(a.total AS BIGINT), \
                     CAST(a.delivered_count AS BIGINT), CAST(a.failed_count AS BIGINT), \
                     CAST(a.skipped_count AS BIGINT) \
                     FROM announcements a WHERE a.status = 'completed' \
                     AND (a.updated_at > $1 OR (a.updated_at = $1 AND a.id > $2)) AND a.updated_at <= $3 \
                     AND {} ORDER BY a.updated_at, a.id LIMIT $4",
                    has_endpoint("a.tenant_id")
                );
            let rows: Vec<CompletedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(key.as_str())
                .bind(until)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(
                    |(at, id, tenant, channel, total, delivered, failed, skipped)| CapturedEvent {
                        dedupe_key: format!("announcement.completed:{id}"),
                        event_type: "announcement.completed",
                        data: json!({
                            "announcement_id": id, "channel_id": channel, "total": total,
                            "delivered": delivered, "failed": failed, "skipped": skipped,
                        }),
                        at,
                        key: id,
                        tenant,
                    },
                )
                .collect()
        }
        EventSource::DeliveriesFailed => {
            let sql = format!(
                "SELECT d.updated_at, CAST(d.id AS TEXT), a.tenant_id, d.announcement_id, \
                     d.channel_id, d.address, d.reason, CAST(d.attempts AS BIGINT) \
                     FROM deliveries d JOIN announcements a ON a.id = d.announcement_id \
                     WHERE d.status = 'failed' \
                     AND (d.updated_at > $1 OR (d.updated_at = $1 AND d.id > CAST($2 AS BIGINT))) \
                     AND d.updated_at <= $3 AND {} ORDER BY d.updated_at, d.id LIMIT $4",
                has_endpoint("a.tenant_id")
            );
            let rows: Vec<FailedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(key.as_str())
                .bind(until)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(
                    |(at, id, tenant, announcement, channel, address, reason, attempts)| {
                        CapturedEvent {
                            dedupe_key: format!("delivery.failed:{id}"),
                            event_type: "delivery.failed",
                            data: json!({
                                "announcement_id": announcement, "channel_id": channel,
                                "address": address, "reason": reason, "attempts": attempts,
                            }),
                            at,
                            key: id,
                            tenant,
                        }
                    },
                )
                .collect()
        }
        EventSource::ConsentLog => {
            let sql = format!(
                "SELECT l.created_at, l.id, c.tenant_id, l.channel_id, l.address, l.action, \
                     l.source FROM consent_log l JOIN channels c ON c.id = l.channel_id \
                     WHERE l.action IN ('subscribe', 'unsubscribe') \
                     AND (l.created_at > $1 OR (l.created_at = $1 AND l.id > $2)) \
                     AND l.created_at <= $3 AND {} ORDER BY l.created_at, l.id LIMIT $4",
                has_endpoint("c.tenant_id")
            );
            let rows: Vec<ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(key.as_str())
                .bind(until)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(|(at, id, tenant, channel, address, action, source)| {
                    let event_type = if action == "subscribe" {
                        "subscriber.subscribed"
                    } else {
                        "subscriber.unsubscribed"
                    };
                    CapturedEvent {
                        dedupe_key: format!("consent:{id}"),
                        event_type,
                        data: json!({
                            "channel_id": channel, "address": address, "source": source,
                        }),
                        at,
                        key: id,
                        tenant,
                    }
                })
                .collect()
        }
        EventSource::TriggerMatches => {
            let sql = format!(
                "SELECT a.created_at, a.id, a.tenant_id, a.channel_id, e.trigger_id, \
                     CAST(e.chain_id AS BIGINT), e.tx_hash, CAST(e.block_number AS BIGINT), \
                     CAST(e.log_index AS BIGINT) \
                     FROM announcements a JOIN chain_events e ON e.announcement_id = a.id \
                     WHERE (a.created_at > $1 OR (a.created_at = $1 AND a.id > $2)) \
                     AND a.created_at <= $3 AND {} ORDER BY a.created_at, a.id LIMIT $4",
                has_endpoint("a.tenant_id")
            );
            let rows: Vec<MatchRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(key.as_str())
                .bind(until)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(
                    |(at, id, tenant, channel, trigger, chain, tx, block, log_index)| {
                        CapturedEvent {
                            dedupe_key: format!("trigger.matched:{id}"),
                            event_type: "trigger.matched",
                            data: json!({
                                "trigger_id": trigger, "channel_id": channel,
                                "announcement_id": id, "chain_id": chain,
                                "tx_hash": format!("0x{}", hex::encode(tx)),
                                "block_number": block, "log_index": log_index,
                            }),
                            at,
                            key: id,
                            tenant,
                        }
                    },
                )
                .collect()
        }
    };
    Ok(events)
}
