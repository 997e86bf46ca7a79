//! Subscribers: subscribe, batch subscribe, unsubscribe (soft) and keyset listing. Only the
//! single-address upsert is written here; the rest is shared (`store/subscribers_sql.rs`).

use chrono::Utc;
use sqlx::postgres::PgPool;

use super::text_array;
use crate::store::subscribers_sql::impl_subscribers;
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

impl_subscribers!(
    sqlx::Postgres,
    "unnest($2::text[]) AS a(address)",
    text_array
);
