//! Postgres: trigger CRUD and chain watcher leases; the engine's
//! [`ChainStore`](crate::chain::ChainStore) is in `chain_batch.rs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::PgPool;

use super::chain_batch::PgChainStore;
use super::PgStore;
use crate::chain::store::ChainStore;
use crate::domain::{ChannelId, TenantId, TriggerId};
use crate::store::chain::{expiry, long_ago, TriggerRow, TRIGGER_COLUMNS};
use crate::store::*;

#[async_trait]
impl TriggerStore for PgStore {
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
            .bind(spec)
            .bind(new.spec.from_block.map(|b| b as i64))
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TriggerRow::into_trigger).transpose()
    }

    async fn list_triggers(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Option<Vec<Trigger>>> {
        if self.get_channel(tenant, channel).await?.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE channel_id = $1 AND tenant_id = $2 \
             AND deleted_at IS NULL AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        let rows: Vec<TriggerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .bind(&page.cursor)
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
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
            .fetch_optional(&self.pool)
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
            "UPDATE triggers t SET \
                 spec = COALESCE($4, spec), \
                 revision = revision + CASE WHEN $4::text IS NULL THEN 0 ELSE 1 END, \
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
            .bind(spec)
            .bind(patch.paused)
            .bind(Utc::now())
            .fetch_optional(&self.pool)
            .await?;
        row.map(TriggerRow::into_trigger).transpose()
    }

    async fn delete_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "UPDATE triggers t SET deleted_at = $4, updated_at = $4 \
             WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = t.channel_id AND c.deleted_at IS NULL)",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(epoch.map(|epoch| ChainLease {
            chain_id,
            holder: holder.to_owned(),
            epoch,
        }))
    }

    async fn renew_chain_lease(&self, lease: &ChainLease, ttl: Duration) -> StoreResult<bool> {
        set_expiry(&self.pool, lease, expiry(ttl)).await
    }

    async fn release_chain_lease(&self, lease: &ChainLease) -> StoreResult<()> {
        set_expiry(&self.pool, lease, long_ago()).await.map(|_| ())
    }

    fn chain_store(&self, lease: Option<ChainLease>) -> Arc<dyn ChainStore> {
        Arc::new(PgChainStore {
            pool: self.pool.clone(),
            lease,
        })
    }
}

async fn set_expiry(
    pool: &PgPool,
    lease: &ChainLease,
    at: chrono::DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE chain_leases SET expires_at = $4 WHERE chain_id = $1 AND holder = $2 AND epoch = $3",
    )
    .bind(lease.chain_id as i64)
    .bind(&lease.holder)
    .bind(lease.epoch)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
