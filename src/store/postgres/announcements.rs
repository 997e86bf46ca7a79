//! Postgres: creating an announcement and its deliveries atomically.
//!
//! Fan-out is `INSERT … SELECT` from `subscribers`, or from `unnest($n::text[])` for a targeted
//! audience, so 10,000 delivery rows cost one statement and no client memory. The common case
//! (audience "all", no idempotency key) is a single statement, so it needs no explicit
//! transaction and costs one round trip.

use chrono::Utc;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use super::text_array;
use crate::store::announcements_sql::{created, shared_announcement_sql};
use crate::store::*;

shared_announcement_sql!(Postgres, "unnest($5::text[]) AS a(address)", text_array);

pub(super) async fn create(
    pool: &PgPool,
    new: &NewAnnouncement,
    idempotency: Option<IdempotencyCompletion>,
) -> StoreResult<Option<Announcement>> {
    let now = Utc::now();
    if let (Audience::All | Audience::Topic(_), None) = (&new.audience, &idempotency) {
        // The hot path is a single statement, atomic on its own: no BEGIN/COMMIT round trips.
        let counts = insert_for_all(pool, new, now).await?;
        return Ok(counts.map(|counts| created(new, counts, now)));
    }
    let mut tx = pool.begin().await?;
    let counts = match &new.audience {
        Audience::All | Audience::Topic(_) => insert_for_all(&mut *tx, new, now).await?,
        Audience::Addresses(addresses) => insert_for_list(&mut tx, new, addresses, now).await?,
    };
    let Some(counts) = counts else {
        return Ok(None);
    };
    commit_created(tx, new, counts, now, idempotency)
        .await
        .map(Some)
}

/// Audience "all": the ownership check, the announcement row (with its total) and one delivery
/// per active subscriber in one statement. Everything reads the same snapshot, so the total
/// always equals the rows created; the deliveries' foreign key is checked at the end of the
/// statement, when the announcement row exists. `None` when the channel is not the tenant's.
pub(super) async fn insert_for_all<'e>(
    executor: impl sqlx::PgExecutor<'e>,
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
                 (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic) \
             SELECT $1, $2, $3, $4, $5, CASE WHEN n = 0 THEN 'completed' ELSE 'queued' END, n, $6, $6, $7 \
             FROM (SELECT COUNT(*) AS n FROM recipients) AS c, owned \
             RETURNING total \
         ), fanned AS ( \
             INSERT INTO deliveries \
                 (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
             SELECT $1, $3, address, $5, 'pending', $6, $6, $6 FROM recipients \
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
    .fetch_optional(executor)
    .await?;
    Ok(total.map(|total| Counts {
        total,
        pending: total,
        ..Counts::default()
    }))
}

/// Targeted audience: the row, its deliveries, then its total and status from the rows
/// actually created (see `store/announcements_sql.rs`). `None` when the channel is not the
/// tenant's.
async fn insert_for_list(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewAnnouncement,
    addresses: &[Address],
    now: chrono::DateTime<Utc>,
) -> StoreResult<Option<Counts>> {
    if !owns_channel(tx, new).await? {
        return Ok(None);
    }
    insert_row(tx, new, now).await?;
    let counts = insert_listed(tx, new, addresses, now).await?;
    settle_totals(tx, new, &counts).await?;
    Ok(Some(counts))
}

/// Whether the announcement's channel exists, is live, and belongs to its tenant. `FOR SHARE`
/// keeps a concurrent delete from slipping in before this transaction commits.
async fn owns_channel(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewAnnouncement,
) -> StoreResult<bool> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL FOR SHARE",
    )
    .bind(new.channel.as_str())
    .bind(new.tenant.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}
