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
    // SQLite has no way to tell an upsert's insert from its update, so the portable two-step
    // version serves (both statements on one connection).
    subscribe_in(&mut *pool.acquire().await?, channel, address, Utc::now()).await
}

impl_subscribers!(
    sqlx::Sqlite,
    "(SELECT value AS address FROM json_each($2)) AS a",
    json_list
);
