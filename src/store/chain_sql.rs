//! The SQL behind [`TriggerStore`](super::TriggerStore): trigger CRUD and chain watcher leases,
//! written once for both backends: one impl for every store over a [`SqlPool`] of a
//! [`Dialect`].
//!
//! Portable SQL, like `selfservice_sql.rs`: `CAST($n AS TEXT) IS NULL` instead of `$n::text`,
//! `UPDATE triggers AS t` (both dialects accept the `AS`), and the bound `paused` flag compared
//! with `false`, which SQLite reads as `0`. The engine's batch store is in `chain_batch_sql.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::chain::{expiry, long_ago, TriggerRow, TRIGGER_COLUMNS};
use super::chain_batch_sql::SqlChainStore;
use super::dialect::{Dialect, SqlPool};
use super::*;
use crate::chain::store::ChainStore;
use crate::domain::TriggerId;

#[async_trait]
impl<S> TriggerStore for S
where
    S: SqlPool,
    SqlChainStore<S::Db>: ChainStore + 'static,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<i64>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<bool>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> TriggerRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn last_match_blocks(&self, channel: &ChannelId) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT e.trigger_id, MAX(e.block_number) FROM chain_events e \
             JOIN triggers t ON t.id = e.trigger_id WHERE t.channel_id = $1 GROUP BY e.trigger_id",
        )
        .bind(channel.as_str())
        .fetch_all(self.sql_pool())
        .await?)
    }

    async fn create_trigger(&self, new: &NewTrigger) -> StoreResult<Option<Trigger>> {
        let spec = serde_json::to_string(&new.spec).expect("a TriggerSpec serializes");
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO triggers (id, tenant_id, channel_id, chain_id, spec, revision, start_block, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, 1, COALESCE($6, (SELECT block_number + 1 FROM chain_cursors WHERE chain_id = $4), 0), $7, $7 \
             FROM channels WHERE id = $3 AND tenant_id = $2 AND deleted_at IS NULL \
             RETURNING {TRIGGER_COLUMNS}"
        );
        let row: Option<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(new.id.as_str())
            .bind(new.tenant.as_str())
            .bind(new.channel.as_str())
            .bind(new.spec.chain_id as i64)
            .bind(spec.as_str())
            .bind(new.spec.from_block.map(|b| b as i64))
            .bind(now)
            .fetch_optional(self.sql_pool())
            .await?;
        row.map(TriggerRow::into_trigger).transpose()
    }

    async fn list_triggers(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Option<Vec<Trigger>>> {
        let live: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        if live.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE channel_id = $1 AND tenant_id = $2 \
             AND deleted_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        let rows: Vec<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .bind(page.cursor.as_deref())
            .bind(i64::from(page.limit))
            .fetch_all(self.sql_pool())
            .await?;
        rows.into_iter()
            .map(TriggerRow::into_trigger)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    async fn get_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
    ) -> StoreResult<Option<Trigger>> {
        let sql = format!(
            "SELECT {TRIGGER_COLUMNS} FROM triggers t WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 \
             AND deleted_at IS NULL AND EXISTS (SELECT 1 FROM channels c WHERE c.id = t.channel_id AND c.deleted_at IS NULL)"
        );
        let row: Option<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .fetch_optional(self.sql_pool())
            .await?;
        row.map(TriggerRow::into_trigger).transpose()
    }

    async fn update_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
        patch: &TriggerPatch,
    ) -> StoreResult<Option<Trigger>> {
        let spec = patch
            .spec
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("a TriggerSpec serializes"));
        // Resuming a paused trigger restarts it after the cursor: the pause is a gap on purpose.
        let sql = format!(
            "UPDATE triggers AS t SET \
                 spec = COALESCE($4, spec), \
                 revision = revision + CASE WHEN CAST($4 AS TEXT) IS NULL THEN 0 ELSE 1 END, \
                 start_block = CASE WHEN paused AND $5 = false \
                     THEN COALESCE((SELECT block_number + 1 FROM chain_cursors cc WHERE cc.chain_id = t.chain_id), start_block) \
                     ELSE start_block END, \
                 scanned_to = CASE WHEN paused AND $5 = false THEN NULL ELSE scanned_to END, \
                 paused = COALESCE($5, paused), updated_at = $6 \
             WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = t.channel_id AND c.deleted_at IS NULL) \
             RETURNING {TRIGGER_COLUMNS}"
        );
        let row: Option<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .bind(spec.as_deref())
            .bind(patch.paused)
            .bind(Utc::now())
            .fetch_optional(self.sql_pool())
            .await?;
        row.map(TriggerRow::into_trigger).transpose()
    }

    async fn delete_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
    ) -> StoreResult<bool> {
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let deleted = sqlx::query(
            "UPDATE triggers AS t SET deleted_at = $4, updated_at = $4 \
             WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = t.channel_id AND c.deleted_at IS NULL)",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
        if S::Db::rows_affected(&deleted) == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM chain_events WHERE trigger_id = $1 AND ready_at IS NOT NULL")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn acquire_chain_lease(
        &self,
        chain_id: u64,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<ChainLease>> {
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO chain_leases (chain_id, holder, epoch, expires_at) VALUES ($1, $2, 1, $4) \
             ON CONFLICT (chain_id) DO UPDATE SET holder = EXCLUDED.holder, \
                 epoch = chain_leases.epoch + 1, expires_at = EXCLUDED.expires_at \
             WHERE chain_leases.expires_at < $3 RETURNING epoch",
        )
        .bind(chain_id as i64)
        .bind(holder)
        .bind(Utc::now())
        .bind(expiry(ttl))
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(epoch.map(|epoch| ChainLease {
            chain_id,
            holder: holder.to_owned(),
            epoch,
        }))
    }

    async fn renew_chain_lease(&self, lease: &ChainLease, ttl: Duration) -> StoreResult<bool> {
        set_expiry(self.sql_pool(), lease, expiry(ttl)).await
    }

    async fn release_chain_lease(&self, lease: &ChainLease) -> StoreResult<()> {
        set_expiry(self.sql_pool(), lease, long_ago())
            .await
            .map(|_| ())
    }

    fn chain_store(&self, lease: Option<ChainLease>) -> Arc<dyn ChainStore> {
        Arc::new(SqlChainStore {
            pool: self.sql_pool().clone(),
            lease,
        })
    }
}

/// Moves a lease's expiry if it is still held at its epoch; whether it was.
async fn set_expiry<DB>(pool: &Pool<DB>, lease: &ChainLease, at: DateTime<Utc>) -> StoreResult<bool>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let done = sqlx::query(
        "UPDATE chain_leases SET expires_at = $4 WHERE chain_id = $1 AND holder = $2 AND epoch = $3",
    )
    .bind(lease.chain_id as i64)
    .bind(lease.holder.as_str())
    .bind(lease.epoch)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(DB::rows_affected(&done) == 1)
}
