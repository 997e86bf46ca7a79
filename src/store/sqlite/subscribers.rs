//! Subscribers: subscribe, batch subscribe, unsubscribe (soft) and keyset listing.

use chrono::Utc;
use sqlx::sqlite::SqlitePool;

use super::json_list;
use crate::store::*;

pub(super) async fn subscribe(
    pool: &SqlitePool,
    channel: &ChannelId,
    address: &Address,
) -> StoreResult<SubscribeOutcome> {
    // SQLite has no way to tell an upsert's insert from its update, so try both in turn.
    let now = Utc::now();
    let inserted = sqlx::query(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (channel_id, address) DO NOTHING",
    )
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(SubscribeOutcome::Added);
    }
    let reactivated = sqlx::query(
        "UPDATE subscribers SET status = 'active', updated_at = $3 \
         WHERE channel_id = $1 AND address = $2 AND status <> 'active'",
    )
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(if reactivated == 1 {
        SubscribeOutcome::Reactivated
    } else {
        SubscribeOutcome::AlreadyActive
    })
}

pub(super) async fn subscribe_many(
    pool: &SqlitePool,
    channel: &ChannelId,
    addresses: &[Address],
) -> StoreResult<BatchOutcome> {
    let list = json_list(addresses);
    let added = sqlx::query(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         SELECT $1, value, 'active', $3, $3 FROM json_each($2) WHERE true \
         ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
         WHERE subscribers.status <> 'active'",
    )
    .bind(channel.as_str())
    .bind(&list)
    .bind(Utc::now())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(BatchOutcome {
        added,
        already: addresses.len() as u64 - added,
    })
}

pub(super) async fn unsubscribe(
    pool: &SqlitePool,
    channel: &ChannelId,
    address: &Address,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 \
         WHERE channel_id = $1 AND address = $2 AND status = 'active'",
    )
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn list(
    pool: &SqlitePool,
    channel: &ChannelId,
    page: &Page,
) -> StoreResult<Vec<Subscriber>> {
    let rows: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT address, updated_at FROM subscribers WHERE channel_id = $1 AND status = 'active' \
         AND ($2 IS NULL OR address > $2) ORDER BY address LIMIT $3",
    )
    .bind(channel.as_str())
    .bind(&page.cursor)
    .bind(i64::from(page.limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(address, at)| Subscriber {
            address: Address::from_trusted(address),
            subscribed_at: at,
        })
        .collect())
}
