//! Postgres: fanning an announcement out to every receiving subscriber in one statement
//! ([`FanOutDialect`]); the rest of creating one is written once in `store/announcements_sql.rs`.
//!
//! Fan-out is `INSERT … SELECT` from `subscribers`, so 10,000 delivery rows cost one statement
//! and no client memory. Being one statement it is atomic on its own, so the common case
//! (audience "all", no idempotency key) needs no explicit transaction and costs one round trip.

use chrono::Utc;
use sqlx::postgres::PgConnection;
use sqlx::PgExecutor;

use crate::store::announcements_sql::FanOutDialect;
use crate::store::*;

impl FanOutDialect for sqlx::Postgres {
    const FAN_OUT_ALONE: bool = true;

    async fn fan_out_all(
        conn: &mut PgConnection,
        new: &NewAnnouncement,
        now: chrono::DateTime<Utc>,
    ) -> StoreResult<Option<Counts>> {
        insert_for_all(conn, new, now).await
    }
}

/// Audience "all": the ownership check, the announcement row (with its total) and one delivery
/// per active subscriber in one statement. Everything reads the same snapshot, so the total
/// always equals the rows created; the deliveries' foreign key is checked at the end of the
/// statement, when the announcement row exists. `None` when the channel is not the tenant's.
pub(super) async fn insert_for_all<'e>(
    executor: impl PgExecutor<'e>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Option<Counts>> {
    let total: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH owned AS ( \
             SELECT id FROM channels WHERE id = $3 AND tenant_id = $2 AND deleted_at IS NULL \
         ), recipients AS ( \
             SELECT s.address FROM subscribers s JOIN owned o ON s.channel_id = o.id \
             WHERE s.status = 'active' AND ($7::text IS NULL OR {topic}) \
         ), created AS ( \
             INSERT INTO announcements \
                 (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic, send_at, content) \
             SELECT $1, $2, $3, $4, $5, CASE WHEN n = 0 THEN 'completed' ELSE 'queued' END, n, $6, $6, $7, $8, $9 \
             FROM (SELECT COUNT(*) AS n FROM recipients) AS c, owned \
             RETURNING total \
         ), fanned AS ( \
             INSERT INTO deliveries \
                 (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
             SELECT $1, $3, address, $5, 'pending', COALESCE($8, $6), $6, $6 FROM recipients \
         ) \
         SELECT total FROM created",
        topic = topic_filter("$7")
    )))
    .bind(new.id.as_str())
    .bind(new.tenant.as_str())
    .bind(new.channel.as_str())
    .bind(&new.text)
    .bind(new.priority.as_str())
    .bind(now)
    .bind(new.audience.topic())
    .bind(new.send_at)
    .bind(new.content_json().as_deref())
    .fetch_optional(executor)
    .await?;
    Ok(total.map(|total| Counts {
        total,
        pending: total,
        ..Counts::default()
    }))
}
