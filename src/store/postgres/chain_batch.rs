//! Postgres: the engine's [`ChainStore`](crate::chain::store::ChainStore). The batch steps are
//! shared with SQLite (`store/chain_batch_sql.rs`); only how a batch starts and how it creates
//! an announcement are written here.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use super::announcements::insert_for_all;
use crate::chain::store::{
    ChainBatch, ChainState, ChainStoreError, CommitSummary, EventKey, EventStatus, TriggerRecord,
};
use crate::domain::{AnnouncementId, ChannelId, Priority, TenantId};
use crate::store::chain::{block_ref, chain_err, pending_event, trigger_record, EventRow};
use crate::store::chain_batch_sql::impl_chain_batch;
use crate::store::*;

/// The engine's store for one chain, optionally fenced by a lease.
pub(super) struct PgChainStore {
    pub(super) pool: PgPool,
    pub(super) lease: Option<ChainLease>,
}

impl PgChainStore {
    /// A plain transaction: the lease fence row-locks what the batch must own.
    async fn begin_batch(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin().await
    }
}

/// Creates an event's announcement with the REST path's single-statement fan-out.
async fn announce_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(insert_for_all(&mut **tx, new, now).await?.is_some())
}

impl_chain_batch!(PgChainStore, Postgres);
