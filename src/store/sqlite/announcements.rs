//! SQLite: creating an announcement and its deliveries in one transaction.
//!
//! Fan-out is `INSERT … SELECT` from `subscribers`, or from `json_each($n)` for a targeted
//! audience (SQLite has no arrays, so the list travels as one JSON text parameter).

use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use super::json_list;
use crate::store::announcements_sql::shared_announcement_sql;
use crate::store::*;

shared_announcement_sql!(
    Sqlite,
    "(SELECT value AS address FROM json_each($5)) AS a",
    json_list
);

pub(super) async fn create(
    pool: &SqlitePool,
    new: &NewAnnouncement,
    idempotency: Option<IdempotencyCompletion>,
) -> StoreResult<Option<Announcement>> {
    let now = Utc::now();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let Some(counts) = insert_in_tx(&mut tx, new, now).await? else {
        return Ok(None);
    };
    commit_created(tx, new, counts, now, idempotency)
        .await
        .map(Some)
}

/// The announcement row and its deliveries inside the caller's transaction (REST announcements
/// and chain events share it). `None`, creating nothing, when the channel is not the tenant's.
pub(super) async fn insert_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Option<Counts>> {
    // Ownership check inside the transaction; SQLite's single writer keeps it valid to commit.
    let owned: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
    )
    .bind(new.channel.as_str())
    .bind(new.tenant.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if owned.is_none() {
        return Ok(None);
    }
    insert_row(tx, new, now).await?;
    let counts = insert_deliveries(tx, new, now).await?;
    settle_totals(tx, new, &counts).await?;
    Ok(Some(counts))
}

async fn insert_deliveries(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Counts> {
    match &new.audience {
        Audience::All | Audience::Topic(_) => {
            let sql = format!(
                "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, s.address, $3, 'pending', $4, $4, $4 FROM subscribers s \
                 WHERE s.channel_id = $2 AND s.status = 'active' AND ($5 IS NULL OR {topic})",
                topic = topic_filter("$5")
            );
            let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(new.id.as_str())
                .bind(new.channel.as_str())
                .bind(new.priority.as_str())
                .bind(now)
                .bind(new.audience.topic())
                .execute(&mut **tx)
                .await?
                .rows_affected() as i64;
            Ok(Counts {
                total: inserted,
                pending: inserted,
                ..Counts::default()
            })
        }
        Audience::Addresses(addresses) => insert_listed(tx, new, addresses, now).await,
    }
}
