//! SQLite: creating an announcement and its deliveries in one transaction.
//!
//! Fan-out is `INSERT … SELECT` from `subscribers`, or from `json_each($n)` for a targeted
//! audience (SQLite has no arrays, so the list travels as one JSON text parameter).

use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use super::json_list;
use crate::store::*;

pub(super) async fn create(
    pool: &SqlitePool,
    new: &NewAnnouncement,
    idempotency: Option<IdempotencyCompletion>,
) -> StoreResult<Option<Announcement>> {
    let now = Utc::now();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let Some((status, counts)) = insert_in_tx(&mut tx, new, now).await? else {
        return Ok(None);
    };
    let announcement = Announcement {
        id: new.id.clone(),
        channel_id: new.channel.clone(),
        text: new.text.clone(),
        priority: new.priority,
        status,
        counts,
        created_at: now,
    };
    if let Some(completion) = idempotency {
        let response = (completion.render)(&announcement);
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', status_code = $3, response_body = $4 \
             WHERE tenant_id = $1 AND key = $2",
        )
        .bind(completion.key.tenant.as_str())
        .bind(&completion.key.key)
        .bind(i32::from(response.status_code))
        .bind(&response.body)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(announcement))
}

/// The announcement row and its deliveries inside the caller's transaction (REST announcements
/// and chain events share it). `None`, creating nothing, when the channel is not the tenant's.
pub(super) async fn insert_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Option<(AnnouncementStatus, Counts)>> {
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
    sqlx::query(
        "INSERT INTO announcements (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $7)",
    )
    .bind(new.id.as_str())
    .bind(new.tenant.as_str())
    .bind(new.channel.as_str())
    .bind(&new.text)
    .bind(new.priority.as_str())
    .bind(now)
    .bind(new.audience.topic())
    .execute(&mut **tx)
    .await?;
    let counts = insert_deliveries(tx, new, now).await?;
    let status = if counts.pending == 0 {
        AnnouncementStatus::Completed
    } else {
        AnnouncementStatus::Queued
    };
    sqlx::query("UPDATE announcements SET total = $2, status = $3 WHERE id = $1")
        .bind(new.id.as_str())
        .bind(counts.total)
        .bind(status.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(Some((status, counts)))
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
        Audience::Addresses(addresses) => {
            let list = json_list(addresses);
            sqlx::query(
                "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, reason, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, a.address, $3, \
                        CASE WHEN s.address IS NULL THEN 'skipped' ELSE 'pending' END, \
                        CASE WHEN s.address IS NULL THEN 'not_subscribed' END, $4, $4, $4 \
                 FROM (SELECT value AS address FROM json_each($5)) AS a \
                 LEFT JOIN subscribers s ON s.channel_id = $2 AND s.address = a.address AND s.status = 'active' \
                 WHERE true ON CONFLICT (announcement_id, address) DO NOTHING",
            )
            .bind(new.id.as_str())
            .bind(new.channel.as_str())
            .bind(new.priority.as_str())
            .bind(now)
            .bind(&list)
            .execute(&mut **tx)
            .await?;
            let groups: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, COUNT(*) FROM deliveries WHERE announcement_id = $1 GROUP BY status",
            )
            .bind(new.id.as_str())
            .fetch_all(&mut **tx)
            .await?;
            Ok(Counts::from_groups(groups))
        }
    }
}
