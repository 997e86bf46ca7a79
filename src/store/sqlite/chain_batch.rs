//! SQLite: the engine's [`ChainStore`](crate::chain::store::ChainStore). The batch steps are
//! shared with Postgres (`store/chain_batch_sql.rs`); only how a batch starts (`BEGIN
//! IMMEDIATE`, so the batch takes the write lock up front instead of failing to upgrade a read
//! lock) and how it creates an announcement are written here.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use super::announcements::insert_in_tx;
use crate::chain::store::{
    ChainBatch, ChainState, ChainStoreError, CommitSummary, EventKey, EventStatus, TriggerRecord,
};
use crate::domain::{AnnouncementId, ChannelId, Priority, TenantId};
use crate::store::chain::{block_ref, chain_err, pending_event, trigger_record, EventRow};
use crate::store::chain_batch_sql::impl_chain_batch;
use crate::store::*;

/// The engine's store for one chain, optionally fenced by a lease.
pub(super) struct SqliteChainStore {
    pub(super) pool: SqlitePool,
    pub(super) lease: Option<ChainLease>,
}

impl SqliteChainStore {
    /// `BEGIN IMMEDIATE`: takes SQLite's write lock before the first read of the batch.
    async fn begin_batch(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Creates an event's announcement with the REST path's fan-out, inside the batch.
async fn announce_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(insert_in_tx(tx, new, now).await?.is_some())
}

impl_chain_batch!(SqliteChainStore, Sqlite);
