//! The engine's [`ChainStore`](crate::chain::store::ChainStore) on SQL, written once for both
//! backends (portable SQL, conventions as in `selfservice_sql.rs`).
//!
//! A batch is one transaction: fence on the lease, roll back above a fork (retracting what
//! was announced there, `chain_retract_sql.rs`), insert matched
//! events (`ON CONFLICT DO NOTHING` on the at-most-once key), create announcements through the
//! same fan-out REST announcements use, then the window, cursor and per-trigger scan marks. The
//! batch starts with [`Dialect::begin_write`] (SQLite: `BEGIN IMMEDIATE`, so it takes the write
//! lock before its first read; Postgres: a plain transaction, the lease fence row-locks what the
//! batch must own), and creates announcements with `announcements_sql::insert_in_tx`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::announcements_sql::{self, FanOutDialect};
use super::chain::{block_ref, chain_err, pending_event, trigger_record, EventRow};
use super::chain_retract_sql::retract_above;
use super::dialect::Dialect;
use super::*;
use crate::chain::store::{
    ChainBatch, ChainState, ChainStore, ChainStoreError, CommitSummary, EventKey, EventStatus,
    TriggerRecord,
};
use crate::domain::Priority;

/// The engine's store for one chain on a pool of `DB`, optionally fenced by a lease.
pub(super) struct SqlChainStore<DB: Dialect> {
    pub(super) pool: Pool<DB>,
    pub(super) lease: Option<ChainLease>,
}

#[async_trait::async_trait]
impl<DB> ChainStore for SqlChainStore<DB>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, DB::Row>,
    for<'r> (i64, Vec<u8>, Vec<u8>): FromRow<'r, DB::Row>,
    for<'r> (String, String, i64, i64, Option<i64>): FromRow<'r, DB::Row>,
    for<'r> EventRow: FromRow<'r, DB::Row>,
{
    async fn load_state(&self, chain_id: u64) -> Result<ChainState, ChainStoreError> {
        let chain = chain_id as i64;
        let cursor: Option<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT block_number, block_hash, parent_hash FROM chain_cursors WHERE chain_id = $1",
        )
        .bind(chain)
        .fetch_optional(&self.pool)
        .await
        .map_err(chain_err)?;
        let window: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT block_number, block_hash, parent_hash FROM chain_blocks WHERE chain_id = $1 ORDER BY block_number",
        )
        .bind(chain)
        .fetch_all(&self.pool)
        .await
        .map_err(chain_err)?;
        let pending: Vec<EventRow> = sqlx::query_as(
            "SELECT trigger_id, tx_hash, log_position, block_number, block_hash, log_index, address, text, ready_at \
             FROM chain_events WHERE chain_id = $1 AND ready_at IS NOT NULL ORDER BY block_number, trigger_id, tx_hash, log_position",
        )
        .bind(chain)
        .fetch_all(&self.pool)
        .await
        .map_err(chain_err)?;
        Ok(ChainState {
            cursor: cursor.map(block_ref).transpose()?,
            window: window
                .into_iter()
                .map(block_ref)
                .collect::<Result<_, _>>()?,
            pending: pending
                .into_iter()
                .map(|row| pending_event(chain_id, row))
                .collect::<Result<_, _>>()?,
        })
    }

    async fn active_triggers(&self, chain_id: u64) -> Result<Vec<TriggerRecord>, ChainStoreError> {
        let rows: Vec<(String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT t.id, t.spec, t.revision, t.start_block, t.scanned_to FROM triggers t \
             JOIN channels c ON c.id = t.channel_id \
             WHERE t.chain_id = $1 AND NOT t.paused AND t.deleted_at IS NULL AND c.deleted_at IS NULL \
             ORDER BY t.id",
        )
        .bind(chain_id as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(chain_err)?;
        rows.into_iter().map(trigger_record).collect()
    }

    async fn commit_batch(&self, batch: ChainBatch) -> Result<CommitSummary, ChainStoreError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(chain_err)?;
        let summary = Self::apply(&mut tx, self.lease.as_ref(), batch).await?;
        tx.commit().await.map_err(chain_err)?;
        Ok(summary)
    }
}

/// Tenant and channel of each trigger seen in a batch, read once per batch.
#[derive(Default)]
struct Owners(HashMap<String, Option<(String, String)>>);

/// The steps of one batch, inside its transaction.
impl<DB> SqlChainStore<DB>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, DB::Row>,
{
    async fn apply(
        tx: &mut Transaction<'_, DB>,
        lease: Option<&ChainLease>,
        batch: ChainBatch,
    ) -> Result<CommitSummary, ChainStoreError> {
        let chain = batch.chain_id as i64;
        let now = Utc::now();
        if let Some(lease) = lease {
            // Row-locks the lease: a takeover waits for this transaction, and a stale epoch stops it.
            let held = sqlx::query(
                "UPDATE chain_leases SET epoch = epoch WHERE chain_id = $1 AND holder = $2 AND epoch = $3",
            )
            .bind(chain)
            .bind(lease.holder.as_str())
            .bind(lease.epoch)
            .execute(&mut **tx)
            .await
            .map_err(chain_err)?;
            if DB::rows_affected(&held) != 1 {
                return Err(LeaseLost {
                    chain_id: lease.chain_id,
                    epoch: lease.epoch,
                }
                .into());
            }
        }
        let mut summary = CommitSummary::default();
        if let Some(fork) = batch.rollback_above {
            let fork = fork as i64;
            sqlx::query("DELETE FROM chain_blocks WHERE chain_id = $1 AND block_number > $2")
                .bind(chain)
                .bind(fork)
                .execute(&mut **tx)
                .await
                .map_err(chain_err)?;
            // Pending events above the fork go; announced ones are retracted, then go too.
            summary.retracted = retract_above(tx, chain, fork, now).await?;
        }
        let mut owners = Owners::default();
        for event in &batch.events {
            let ready_at = match event.status {
                EventStatus::Ready => None,
                EventStatus::Pending { ready_at } => Some(ready_at as i64),
            };
            let inserted = sqlx::query(
                "INSERT INTO chain_events (trigger_id, chain_id, tx_hash, log_position, block_number, block_hash, \
                     log_index, address, text, ready_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            )
            .bind(event.key.trigger_id.as_str())
            .bind(chain)
            .bind(event.key.tx_hash.as_slice())
            .bind(event.key.log_position as i32)
            .bind(event.block_number as i64)
            .bind(event.block_hash.as_slice())
            .bind(event.log_index as i64)
            .bind(event.address.as_slice())
            .bind(event.text.as_str())
            .bind(ready_at)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(chain_err)?;
            if DB::rows_affected(&inserted) == 0 {
                summary.duplicates += 1;
            } else if ready_at.is_none() {
                Self::announce(tx, &mut owners, &event.key, &event.text, now).await?;
                summary.announced += 1;
            } else {
                summary.pending += 1;
            }
        }
        for key in &batch.promote {
            let text: Option<String> = sqlx::query_scalar(
                "UPDATE chain_events SET ready_at = NULL WHERE trigger_id = $1 AND chain_id = $2 \
                 AND tx_hash = $3 AND log_position = $4 AND ready_at IS NOT NULL RETURNING text",
            )
            .bind(key.trigger_id.as_str())
            .bind(chain)
            .bind(key.tx_hash.as_slice())
            .bind(key.log_position as i32)
            .fetch_optional(&mut **tx)
            .await
            .map_err(chain_err)?;
            if let Some(text) = text {
                Self::announce(tx, &mut owners, key, &text, now).await?;
                summary.announced += 1;
            }
        }
        for block in &batch.window_add {
            sqlx::query(
                "INSERT INTO chain_blocks (chain_id, block_number, block_hash, parent_hash) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = EXCLUDED.block_hash, parent_hash = EXCLUDED.parent_hash",
            )
            .bind(chain)
            .bind(block.number as i64)
            .bind(block.hash.as_slice())
            .bind(block.parent_hash.as_slice())
            .execute(&mut **tx)
            .await
            .map_err(chain_err)?;
        }
        sqlx::query("DELETE FROM chain_blocks WHERE chain_id = $1 AND block_number < $2")
            .bind(chain)
            .bind(batch.window_prune_below as i64)
            .execute(&mut **tx)
            .await
            .map_err(chain_err)?;
        sqlx::query(
            "INSERT INTO chain_cursors (chain_id, block_number, block_hash, parent_hash, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (chain_id) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash, \
                 parent_hash = EXCLUDED.parent_hash, updated_at = EXCLUDED.updated_at",
        )
        .bind(chain)
        .bind(batch.cursor.number as i64)
        .bind(batch.cursor.hash.as_slice())
        .bind(batch.cursor.parent_hash.as_slice())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(chain_err)?;
        for (id, block) in &batch.scanned_to {
            sqlx::query("UPDATE triggers SET scanned_to = $2 WHERE id = $1 AND chain_id = $3")
                .bind(id.as_str())
                .bind(*block as i64)
                .bind(chain)
                .execute(&mut **tx)
                .await
                .map_err(chain_err)?;
        }
        Ok(summary)
    }

    /// Creates the announcement (and its deliveries) for one event through the REST path's
    /// statement, and links it to the event. A trigger deleted (or whose channel was deleted)
    /// meanwhile gets no announcement; its event still counts as settled so it is never retried.
    async fn announce(
        tx: &mut Transaction<'_, DB>,
        owners: &mut Owners,
        key: &EventKey,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ChainStoreError> {
        if !owners.0.contains_key(&key.trigger_id) {
            let owner: Option<(String, String)> = sqlx::query_as(
                "SELECT tenant_id, channel_id FROM triggers WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(key.trigger_id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(chain_err)?;
            owners.0.insert(key.trigger_id.clone(), owner);
        }
        // Deleted while this batch was being prepared: its events are settled without a message.
        let Some((tenant, channel)) = owners.0[&key.trigger_id].clone() else {
            return Ok(());
        };
        let new = NewAnnouncement {
            id: AnnouncementId::generate(),
            tenant: TenantId::from_trusted(tenant),
            channel: ChannelId::from_trusted(channel),
            text: text.to_owned(),
            priority: Priority::Normal,
            audience: Audience::All,
            send_at: None,
            content: None,
        };
        let created = announcements_sql::insert_in_tx::<DB>(tx, &new, now)
            .await
            .map(|counts| counts.is_some())
            .map_err(|e| match e.into_sqlx() {
                Ok(e) => chain_err(e),
                Err(other) => ChainStoreError::Corrupt(other.to_string()),
            })?;
        if created {
            sqlx::query(
                "UPDATE chain_events SET announcement_id = $5 WHERE trigger_id = $1 AND chain_id = $2 \
                 AND tx_hash = $3 AND log_position = $4",
            )
            .bind(key.trigger_id.as_str())
            .bind(key.chain_id as i64)
            .bind(key.tx_hash.as_slice())
            .bind(key.log_position as i32)
            .bind(new.id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(chain_err)?;
        }
        Ok(())
    }
}
