//! Idempotency records: claim, replay or refuse, release, and purge.
//!
//! A claim is an insert that loses on conflict; the loser reads the record and
//! `IdempotencyRow::judge` decides. Expired or stale records are taken over with an update
//! guarded by the old `created_at`, so of two concurrent takeovers exactly one wins.
//!
//! Portable SQL, written once for both backends as generic functions over [`Dialect`]
//! (conventions as in `selfservice_sql.rs`).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::Dialect;
use super::rows::IdempotencyRow;
use super::{IdempotencyBegin, IdempotencyKey, StoreResult};

/// Starts (or replays, or refuses) an idempotent request.
pub(super) async fn begin<DB>(
    pool: &Pool<DB>,
    key: &IdempotencyKey,
    request_hash: &str,
) -> StoreResult<IdempotencyBegin>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> IdempotencyRow: FromRow<'r, DB::Row>,
{
    let now = Utc::now();
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, created_at) \
         VALUES ($1, $2, $3, 'in_flight', $4) ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(key.tenant.as_str())
    .bind(key.key.as_str())
    .bind(request_hash)
    .bind(now)
    .execute(pool)
    .await?;
    if DB::rows_affected(&inserted) == 1 {
        return Ok(IdempotencyBegin::Started);
    }
    let row: Option<IdempotencyRow> = sqlx::query_as(
        "SELECT request_hash, state, status_code, response_body, created_at FROM idempotency_keys \
         WHERE tenant_id = $1 AND key = $2",
    )
    .bind(key.tenant.as_str())
    .bind(key.key.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        // Abandoned between our insert and read: the caller may simply retry.
        return Ok(IdempotencyBegin::InProgress);
    };
    if let Some(verdict) = row.judge(request_hash, now) {
        return Ok(verdict);
    }
    // Expired or stale: take it over, guarded by the old timestamp so that of two
    // concurrent takeovers exactly one wins.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET request_hash = $3, state = 'in_flight', status_code = NULL, \
         response_body = NULL, created_at = $4 WHERE tenant_id = $1 AND key = $2 AND created_at = $5",
    )
    .bind(key.tenant.as_str())
    .bind(key.key.as_str())
    .bind(request_hash)
    .bind(now)
    .bind(row.created_at)
    .execute(pool)
    .await?;
    Ok(if DB::rows_affected(&taken) == 1 {
        IdempotencyBegin::Started
    } else {
        IdempotencyBegin::InProgress
    })
}

/// Forgets an in-flight key whose request failed.
pub(super) async fn abandon<DB>(pool: &Pool<DB>, key: &IdempotencyKey) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_flight'",
    )
    .bind(key.tenant.as_str())
    .bind(key.key.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes up to `limit` records created before `before`; returns how many.
pub(super) async fn purge<DB>(
    pool: &Pool<DB>,
    before: DateTime<Utc>,
    limit: u32,
) -> StoreResult<u64>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    // Batched so a large backlog never holds locks for long.
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN \
         (SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    Ok(DB::rows_affected(&done))
}
