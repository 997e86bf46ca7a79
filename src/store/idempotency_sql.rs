//! Idempotency records: claim, replay or refuse, release, and purge.
//!
//! A claim is an insert that loses on conflict; the loser reads the record and
//! `IdempotencyRow::judge` decides. Expired or stale records are taken over with an update
//! guarded by the old `created_at`, so of two concurrent takeovers exactly one wins.
//!
//! Portable SQL, written once for both backends (conventions as in `selfservice_sql.rs`).

/// Expands to the free functions `begin`, `abandon` and `purge` over a `&$pool`. The caller
/// must `use chrono::Utc` and `crate::store::*`.
macro_rules! impl_idempotency {
    ($pool:ty) => {
        pub(super) async fn begin(
            pool: &$pool,
            key: &IdempotencyKey,
            request_hash: &str,
        ) -> StoreResult<IdempotencyBegin> {
            let now = Utc::now();
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, created_at) \
                 VALUES ($1, $2, $3, 'in_flight', $4) ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(key.tenant.as_str())
            .bind(&key.key)
            .bind(request_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(IdempotencyBegin::Started);
            }
            let row: Option<IdempotencyRow> = sqlx::query_as(
                "SELECT request_hash, state, status_code, response_body, created_at FROM idempotency_keys \
                 WHERE tenant_id = $1 AND key = $2",
            )
            .bind(key.tenant.as_str())
            .bind(&key.key)
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
            .bind(&key.key)
            .bind(request_hash)
            .bind(now)
            .bind(row.created_at)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(if taken == 1 {
                IdempotencyBegin::Started
            } else {
                IdempotencyBegin::InProgress
            })
        }

        pub(super) async fn abandon(pool: &$pool, key: &IdempotencyKey) -> StoreResult<()> {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_flight'",
            )
            .bind(key.tenant.as_str())
            .bind(&key.key)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(super) async fn purge(
            pool: &$pool,
            before: chrono::DateTime<Utc>,
            limit: u32,
        ) -> StoreResult<u64> {
            // Batched so a large backlog never holds locks for long.
            let done = sqlx::query(
                "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN \
                 (SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(i64::from(limit))
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        }
    };
}

pub(super) use impl_idempotency;
