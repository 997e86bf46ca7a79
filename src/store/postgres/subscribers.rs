//! Subscribers: subscribe, batch subscribe, unsubscribe (soft) and keyset listing.

use chrono::Utc;
use sqlx::postgres::PgPool;

use crate::store::*;

pub(super) async fn subscribe(
    pool: &PgPool,
    channel: &ChannelId,
    address: &Address,
) -> StoreResult<SubscribeOutcome> {
    // `xmax = 0` distinguishes a fresh insert from an update in Postgres's upsert.
    let row: Option<(bool,)> = sqlx::query_as(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $3) \
         ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
         WHERE subscribers.status <> 'active' RETURNING (xmax = 0)",
    )
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(Utc::now())
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((true,)) => SubscribeOutcome::Added,
        Some((false,)) => SubscribeOutcome::Reactivated,
        None => SubscribeOutcome::AlreadyActive,
    })
}

pub(super) async fn subscribe_many(
    pool: &PgPool,
    channel: &ChannelId,
    addresses: &[Address],
) -> StoreResult<BatchOutcome> {
    let list: Vec<&str> = addresses.iter().map(Address::as_str).collect();
    let added = sqlx::query(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         SELECT $1, a, 'active', $3, $3 FROM unnest($2::text[]) AS a \
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
    pool: &PgPool,
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
    pool: &PgPool,
    channel: &ChannelId,
    page: &Page,
) -> StoreResult<Vec<Subscriber>> {
    let rows: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT address, updated_at FROM subscribers WHERE channel_id = $1 AND status = 'active' \
         AND ($2::text IS NULL OR address > $2) ORDER BY address LIMIT $3",
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
