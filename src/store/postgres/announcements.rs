//! Postgres: fanning an announcement out to every receiving subscriber in one statement
//! ([`FanOutDialect`]); the rest of creating one is written once in `store/announcements_sql.rs`.
//!
//! Fan-out is `INSERT … SELECT` from `subscribers`, so 10,000 delivery rows cost one statement
//! and no client memory. Being one statement it is atomic on its own, so the common case
//! (audience "all", no idempotency key) needs no explicit transaction and costs one round trip.

use chrono::Utc;
use sqlx::postgres::PgConnection;
use sqlx::PgExecutor;

use crate::store::announcements_sql::{created, FanOutDialect, RecordedResponse};
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

    async fn fan_out_all_recorded(
        conn: &mut PgConnection,
        new: &NewAnnouncement,
        now: chrono::DateTime<Utc>,
        record: &RecordedResponse<'_>,
    ) -> StoreResult<Option<Creation>> {
        insert_for_all_recorded(conn, new, now, record)
            .await
            .map(Some)
    }
}

/// The statement of [`insert_for_all`]; with `recorded`, it also inserts the idempotency
/// record (parameters `$10`-`$14`), and creates the announcement and its deliveries only if
/// that insert did (the key was new).
fn fan_out_sql(recorded: bool) -> String {
    let (record, gate) = if recorded {
        (
            "recorded AS ( \
                 INSERT INTO idempotency_keys \
                     (tenant_id, key, request_hash, state, status_code, response_body, created_at) \
                 SELECT $2, $10, $11, 'done', $12, \
                        CASE WHEN n = 0 THEN $13 ELSE replace($14, $15, n::text) END, $6 \
                 FROM (SELECT COUNT(*) AS n FROM recipients) AS c, owned \
                 ON CONFLICT (tenant_id, key) DO NOTHING \
                 RETURNING 1 \
             ), ",
            ", recorded",
        )
    } else {
        ("", "")
    };
    format!(
        "WITH owned AS ( \
             SELECT id FROM channels WHERE id = $3 AND tenant_id = $2 AND deleted_at IS NULL \
         ), recipients AS ( \
             SELECT s.address FROM subscribers s JOIN owned o ON s.channel_id = o.id \
             WHERE s.status = 'active' AND ($7::text IS NULL OR {topic}) \
         ), {record}created AS ( \
             INSERT INTO announcements \
                 (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic, send_at, content) \
             SELECT $1, $2, $3, $4, $5, CASE WHEN n = 0 THEN 'completed' ELSE 'queued' END, n, $6, $6, $7, $8, $9 \
             FROM (SELECT COUNT(*) AS n FROM recipients) AS c, owned{gate} \
             RETURNING total \
         ), fanned AS ( \
             INSERT INTO deliveries \
                 (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
             SELECT $1, $3, address, $5, 'pending', COALESCE($8, $6), $6, $6 FROM recipients, created \
         ) \
         SELECT (SELECT total FROM created), EXISTS (SELECT 1 FROM owned)",
        topic = topic_filter("$7")
    )
}

/// Audience "all": the ownership check, the announcement row (with its total) and one delivery
/// per active subscriber in one statement. Everything reads the same snapshot, so the total
/// always equals the rows created. `None` when the channel is not the tenant's.
pub(super) async fn insert_for_all<'e>(
    executor: impl PgExecutor<'e>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Option<Counts>> {
    let (total, _owned): (Option<i64>, bool) = bind_new(
        sqlx::query_as(sqlx::AssertSqlSafe(fan_out_sql(false))),
        new,
        now,
    )
    .fetch_one(executor)
    .await?;
    Ok(total.map(pending))
}

/// [`insert_for_all`] recording a new idempotency key, done, with the response for the number
/// of recipients found, in the same statement: one round trip and no explicit transaction for
/// the usual keyed request. A key already recorded (or being recorded: the insert waits for
/// that transaction) creates nothing and answers [`Creation::KeyExists`].
async fn insert_for_all_recorded(
    conn: &mut PgConnection,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
    record: &RecordedResponse<'_>,
) -> StoreResult<Creation> {
    let (total, owned): (Option<i64>, bool) = bind_new(
        sqlx::query_as(sqlx::AssertSqlSafe(fan_out_sql(true))),
        new,
        now,
    )
    .bind(record.key.key.as_str())
    .bind(record.request_hash)
    .bind(i32::from(record.status_code))
    .bind(record.empty.as_str())
    .bind(record.template.as_str())
    .bind(RecordedResponse::SENTINEL.to_string())
    .fetch_one(conn)
    .await?;
    Ok(match (total, owned) {
        (Some(total), _) => Creation::Created(created(new, pending(total), now)),
        (None, true) => Creation::KeyExists,
        (None, false) => Creation::NoChannel,
    })
}

/// Binds `$1`-`$9` of [`fan_out_sql`].
fn bind_new<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    new: &'q NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(new.id.as_str())
        .bind(new.tenant.as_str())
        .bind(new.channel.as_str())
        .bind(&new.text)
        .bind(new.priority.as_str())
        .bind(now)
        .bind(new.audience.topic())
        .bind(new.send_at)
        .bind(new.content_json())
}

/// Counts of a fan-out to all: every delivery created is pending.
fn pending(total: i64) -> Counts {
    Counts {
        total,
        pending: total,
        ..Counts::default()
    }
}
