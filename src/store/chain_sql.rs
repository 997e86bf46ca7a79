//! The SQL behind [`TriggerStore`](super::TriggerStore): trigger CRUD and chain watcher leases,
//! written once for both backends.
//!
//! Portable SQL, like `selfservice_sql.rs`: `CAST($n AS TEXT) IS NULL` instead of `$n::text`,
//! `UPDATE triggers AS t` (both dialects accept the `AS`), and the bound `paused` flag compared
//! with `false`, which SQLite reads as `0`. The engine's batch store is in `chain_batch_sql.rs`.

/// Expands to `impl TriggerStore for $store` (using `self.pool`, a `$pool`) and the lease helper
/// `set_expiry`; `chain_store` hands out a `$chain_store { pool, lease }`. The caller must import
/// what the backend's `chain.rs` imports (`Arc`, `Duration`, `Utc`, the trigger row helpers and
/// `crate::store::*`).
macro_rules! impl_triggers {
    ($store:ty, $pool:ty, $chain_store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::TriggerStore for $store {
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
                     AND deleted_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR id > $3) ORDER BY id LIMIT $4"
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
                let mut tx = $crate::store::write_tx::BeginWrite::begin_write(&self.pool).await?;
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
                Arc::new($chain_store {
                    pool: self.pool.clone(),
                    lease,
                })
            }
        }

        async fn set_expiry(
            pool: &$pool,
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
    };
}

pub(super) use impl_triggers;
