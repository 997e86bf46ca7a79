//! A channel identity's sender lease and the MLS state kept under it, written once for both
//! backends: taking, renewing and releasing the lease (`channel_senders`), and reading and
//! writing the `channel_state` rows, whose writes the lease token fences (the bodies of those
//! [`PipelineStore`](crate::store::PipelineStore) methods, which `pipeline_sql.rs` delegates
//! here). The multi-row state statements differ per backend and are
//! [`PipelineDialect`] items.

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use crate::domain::ChannelId;
use crate::store::dialect::{Dialect, SqlPool};
use crate::store::pipeline::{
    prefix_end, prefix_ranges, split_batch, PipelineDialect, SenderLease,
};
use crate::store::StoreResult;

type Row<DB> = <DB as sqlx::Database>::Row;

/// See [`PipelineStore::acquire_sender`](crate::store::PipelineStore::acquire_sender).
pub(super) async fn acquire_sender<S>(
    store: &S,
    channel: &ChannelId,
    owner: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Option<SenderLease>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (i64, Option<i64>): FromRow<'r, Row<S::Db>>,
{
    let _turn = store.write_turn().await;
    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
        "INSERT INTO channel_senders (channel_id, lease_owner, lease_until, lease_token, updated_at) \
         VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (channel_id) DO UPDATE SET lease_owner = excluded.lease_owner, \
           lease_until = excluded.lease_until, lease_token = channel_senders.lease_token + 1, \
           updated_at = excluded.updated_at \
         WHERE channel_senders.lease_until IS NULL OR channel_senders.lease_until < $4 \
            OR channel_senders.lease_owner = $2 \
         RETURNING lease_token, state_token",
    )
    .bind(channel.as_str())
    .bind(owner)
    .bind(until)
    .bind(now)
    .fetch_optional(store.sql_pool())
    .await?;
    Ok(row.map(|(token, state_token)| SenderLease {
        channel: channel.clone(),
        owner: owner.to_owned(),
        token,
        state_token,
    }))
}

/// See [`PipelineStore::renew_sender`](crate::store::PipelineStore::renew_sender).
pub(super) async fn renew_sender<S>(
    store: &S,
    lease: &SenderLease,
    until: DateTime<Utc>,
) -> StoreResult<bool>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
{
    let _turn = store.write_turn().await;
    let done = sqlx::query(
        "UPDATE channel_senders SET lease_until = $3 WHERE channel_id = $1 AND lease_token = $2",
    )
    .bind(lease.channel.as_str())
    .bind(lease.token)
    .bind(until)
    .execute(store.sql_pool())
    .await?;
    Ok(S::Db::rows_affected(&done) == 1)
}

/// See [`PipelineStore::release_sender`](crate::store::PipelineStore::release_sender).
pub(super) async fn release_sender<S>(
    store: &S,
    lease: &SenderLease,
    error: Option<&str>,
    hold_until: Option<DateTime<Utc>>,
) -> StoreResult<()>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, S::Db>,
{
    let _turn = store.write_turn().await;
    sqlx::query(
        "UPDATE channel_senders SET lease_owner = NULL, lease_until = $5, last_error = $3, updated_at = $4 \
         WHERE channel_id = $1 AND lease_token = $2",
    )
    .bind(lease.channel.as_str())
    .bind(lease.token)
    .bind(error)
    .bind(Utc::now())
    .bind(hold_until)
    .execute(store.sql_pool())
    .await?;
    Ok(())
}

/// See [`PipelineStore::state_get`](crate::store::PipelineStore::state_get).
pub(super) async fn state_get<S>(
    store: &S,
    channel: &ChannelId,
    key: &[u8],
) -> StoreResult<Option<Vec<u8>>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    Vec<u8>: Type<S::Db>,
    for<'r> (Vec<u8>,): FromRow<'r, Row<S::Db>>,
{
    Ok(
        sqlx::query_scalar("SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2")
            .bind(channel.as_str())
            .bind(key)
            .fetch_optional(store.sql_pool())
            .await?,
    )
}

/// See [`PipelineStore::state_scan`](crate::store::PipelineStore::state_scan).
pub(super) async fn state_scan<S>(
    store: &S,
    channel: &ChannelId,
    prefix: &[u8],
) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Vec<u8>: Encode<'q, S::Db>,
    Vec<u8>: Type<S::Db>,
    for<'r> (Vec<u8>, Vec<u8>): FromRow<'r, Row<S::Db>>,
{
    let rows = match prefix_end(prefix) {
        Some(end) => sqlx::query_as(
            "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 AND key < $3 ORDER BY key",
        )
        .bind(channel.as_str())
        .bind(prefix)
        .bind(end)
        .fetch_all(store.sql_pool())
        .await?,
        None => sqlx::query_as(
            "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 ORDER BY key",
        )
        .bind(channel.as_str())
        .bind(prefix)
        .fetch_all(store.sql_pool())
        .await?,
    };
    Ok(rows)
}

/// See [`PipelineStore::state_scan_many`](crate::store::PipelineStore::state_scan_many).
pub(super) async fn state_scan_many<S>(
    store: &S,
    channel: &ChannelId,
    prefixes: &[Vec<u8>],
) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>>
where
    S: SqlPool,
    S::Db: PipelineDialect,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Vec<u8>: Encode<'q, S::Db>,
    Vec<u8>: Type<S::Db>,
    for<'r> (Vec<u8>, Vec<u8>): FromRow<'r, Row<S::Db>>,
{
    let (ranges, open_ended) = prefix_ranges(prefixes);
    let mut rows = S::Db::scan_state_ranges(store.sql_pool(), channel.as_str(), ranges).await?;
    for prefix in open_ended {
        rows.extend(state_scan(store, channel, prefix).await?);
    }
    Ok(rows)
}

/// See [`PipelineStore::state_write`](crate::store::PipelineStore::state_write).
pub(super) async fn state_write<S>(
    store: &S,
    lease: &SenderLease,
    batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> StoreResult<bool>
where
    S: SqlPool,
    S::Db: PipelineDialect,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    i64: Type<S::Db>,
    for<'r> (i64,): FromRow<'r, Row<S::Db>>,
{
    // The fencing check and the writes share one write transaction: on Postgres the row
    // lock holds off a takeover until this batch is committed, on SQLite the write lock
    // does (a mismatch rolls the state_token update back with the transaction).
    let _turn = store.write_turn().await;
    let mut tx = S::Db::begin_write(store.sql_pool()).await?;
    let current: Option<i64> = sqlx::query_scalar(
        "UPDATE channel_senders SET state_token = lease_token WHERE channel_id = $1 RETURNING lease_token",
    )
    .bind(lease.channel.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if current != Some(lease.token) {
        return Ok(false);
    }
    S::Db::write_state(&mut *tx, lease.channel.as_str(), split_batch(batch)).await?;
    tx.commit().await?;
    Ok(true)
}
