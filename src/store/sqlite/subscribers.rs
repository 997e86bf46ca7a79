//! Subscribers: subscribe, batch subscribe, unsubscribe (soft) and keyset listing. Only the
//! single-address upsert is written here; the rest is shared (`store/subscribers_sql.rs`).

use chrono::Utc;
use sqlx::sqlite::SqlitePool;

use super::json_list;
use crate::store::subscribers_sql::impl_subscribers;
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

impl_subscribers!(
    SqlitePool,
    "(SELECT value AS address FROM json_each($2)) AS a",
    json_list
);
