//! Subscribers: subscribing (one or a batch), unsubscribing and keyset listing, written once for
//! both backends as generic functions over [`Dialect`] (each backend reaches them as its
//! `subscribers` module). The differences: the address list is bound per
//! [`Dialect::text_list`], and a single subscribe is one upsert where the backend can tell its
//! insert from its update ([`Dialect::upsert_inserted`], Postgres), two statements elsewhere.

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::Dialect;
use super::{Address, BatchOutcome, ChannelId, Page, StoreResult, SubscribeOutcome, Subscriber};

/// Subscribes (or re-activates) one address.
pub(super) async fn subscribe<DB>(
    pool: &Pool<DB>,
    channel: &ChannelId,
    address: &Address,
) -> StoreResult<SubscribeOutcome>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (bool,): FromRow<'r, DB::Row>,
{
    let Some(inserted) = DB::upsert_inserted() else {
        // The portable two-step version (both statements on one connection).
        let mut conn = pool.acquire().await?;
        return subscribe_in(&mut *conn, channel, address, Utc::now()).await;
    };
    let sql = format!(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $3) \
         ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
         WHERE subscribers.status <> 'active' RETURNING ({inserted})"
    );
    let row: Option<(bool,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
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

/// Subscribes (or re-activates) one address on `conn`, portably: an insert that ignores a
/// conflict, then a re-activation, so the outcome is known without dialect tricks. Run inside a
/// transaction when the outcome must be acted on atomically.
pub(super) async fn subscribe_in<C, DB>(
    conn: &mut C,
    channel: &ChannelId,
    address: &Address,
    now: DateTime<Utc>,
) -> StoreResult<SubscribeOutcome>
where
    C: Send,
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // Both statements take the same three parameters.
    let statement = |sql| {
        sqlx::query(sql)
            .bind(channel.as_str())
            .bind(address.as_str())
            .bind(now)
    };
    let inserted = statement(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (channel_id, address) DO NOTHING",
    )
    .execute(&mut *conn)
    .await?;
    if DB::rows_affected(&inserted) == 1 {
        return Ok(SubscribeOutcome::Added);
    }
    let reactivated = statement(
        "UPDATE subscribers SET status = 'active', updated_at = $3 \
         WHERE channel_id = $1 AND address = $2 AND status <> 'active'",
    )
    .execute(&mut *conn)
    .await?;
    Ok(if DB::rows_affected(&reactivated) == 1 {
        SubscribeOutcome::Reactivated
    } else {
        SubscribeOutcome::AlreadyActive
    })
}

/// One upsert for the whole batch (deduplicated by the caller); `WHERE true` lets SQLite parse
/// the upsert after `INSERT … SELECT` (Postgres does not mind it). Only new or re-activated rows
/// count as affected, so the rest were already active.
pub(super) async fn subscribe_many<DB>(
    pool: &Pool<DB>,
    channel: &ChannelId,
    addresses: &[Address],
) -> StoreResult<BatchOutcome>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let sql = format!(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         SELECT $1, list.value, 'active', $3, $3 FROM {list} WHERE true \
         ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
         WHERE subscribers.status <> 'active'",
        list = DB::text_rows(2),
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(channel.as_str())
        .bind(DB::text_list(addresses.iter().map(Address::as_str)))
        .bind(Utc::now())
        .execute(pool)
        .await?;
    let added = DB::rows_affected(&done);
    Ok(BatchOutcome {
        added,
        already: addresses.len() as u64 - added,
    })
}

/// Marks an active subscriber unsubscribed at `now`; false if there was none.
pub(super) async fn unsubscribe<'e, DB>(
    executor: impl Executor<'e, Database = DB>,
    channel: &ChannelId,
    address: &Address,
    now: DateTime<Utc>,
) -> StoreResult<bool>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let done = sqlx::query(
        "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 \
         WHERE channel_id = $1 AND address = $2 AND status = 'active'",
    )
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(now)
    .execute(executor)
    .await?;
    Ok(DB::rows_affected(&done) == 1)
}

/// Active subscribers ordered by address, after `page.cursor`.
pub(super) async fn list<DB>(
    pool: &Pool<DB>,
    channel: &ChannelId,
    page: &Page,
) -> StoreResult<Vec<Subscriber>>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, DateTime<Utc>): FromRow<'r, DB::Row>,
{
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT address, updated_at FROM subscribers WHERE channel_id = $1 AND status = 'active' \
         AND (CAST($2 AS TEXT) IS NULL OR address > $2) ORDER BY address LIMIT $3",
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
