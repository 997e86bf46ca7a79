//! Storage for on-chain triggers: the tenant-facing trigger CRUD the API uses, the per-chain
//! watcher lease, and the engine's [`ChainStore`] contract implemented on SQL by each backend.
//!
//! Replicas share one database; each chain is watched by exactly one of them, the holder of
//! that chain's lease. The lease carries an `epoch` that grows on every takeover, and every
//! `commit_batch` of a leased [`ChainStore`] first checks (and row-locks) the lease at its
//! epoch inside the same transaction: a watcher that lost its lease (paused process, network
//! partition) can never commit over its successor.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, StoreResult};
use crate::chain::store::{
    BlockRef, ChainStore, ChainStoreError, EventKey, EventStatus, MatchedEvent, TriggerRecord,
};
use crate::chain::TriggerSpec;
use crate::domain::{ChannelId, TenantId, TriggerId};

/// A trigger as the API shows it.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: TriggerId,
    pub channel_id: ChannelId,
    pub spec: TriggerSpec,
    /// Bumped on every edit of the condition or template.
    pub revision: u64,
    /// First block this trigger considers.
    pub start_block: u64,
    /// Highest block already scanned for it (`None` until the watcher reached it).
    pub scanned_to: Option<u64>,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated trigger to store.
#[derive(Debug, Clone)]
pub struct NewTrigger {
    pub id: TriggerId,
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub spec: TriggerSpec,
}

/// Changes to a trigger; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TriggerPatch {
    /// Pause (`true`) or resume (`false`). Resuming starts the trigger at the block after the
    /// chain's cursor, so events that happened while it was paused are not announced.
    pub paused: Option<bool>,
    /// A new (already validated) spec; bumps the revision so watchers recompile it.
    pub spec: Option<TriggerSpec>,
}

/// Proof of holding a chain's watcher lease at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLease {
    pub chain_id: u64,
    /// Unique per watcher instance (process and start), so a restarted process is a new holder.
    pub holder: String,
    pub epoch: i64,
}

/// Trigger and chain-watcher persistence; reached through [`super::Store::triggers`].
#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Stores a trigger on the tenant's live channel; `None` (nothing stored) when the channel
    /// is missing, deleted or another tenant's. Without `from_block` the trigger starts at the
    /// block after the chain's cursor (live only), read in the same statement.
    async fn create_trigger(&self, new: &NewTrigger) -> StoreResult<Option<Trigger>>;
    /// Triggers of a channel ordered by id after `page.cursor`; `None` if the channel is not
    /// the tenant's.
    async fn list_triggers(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Option<Vec<Trigger>>>;
    async fn get_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
    ) -> StoreResult<Option<Trigger>>;
    async fn update_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
        patch: &TriggerPatch,
    ) -> StoreResult<Option<Trigger>>;
    /// The highest block of a matched event, per trigger of the channel (triggers that never
    /// matched are absent).
    async fn last_match_blocks(&self, channel: &ChannelId) -> StoreResult<Vec<(String, i64)>>;
    /// Soft-deletes a trigger and drops its events still waiting for confirmations.
    async fn delete_trigger(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &TriggerId,
    ) -> StoreResult<bool>;

    /// Takes the chain's lease if it is free or expired (bumping its epoch); `None` while
    /// another holder's lease is live.
    async fn acquire_chain_lease(
        &self,
        chain_id: u64,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<ChainLease>>;
    /// Extends a lease still held at its epoch; false once someone else took it over.
    async fn renew_chain_lease(&self, lease: &ChainLease, ttl: Duration) -> StoreResult<bool>;
    /// Gives the lease up (expires it now) so another replica can take over at once.
    async fn release_chain_lease(&self, lease: &ChainLease) -> StoreResult<()>;
    /// The engine's store for one chain. With a lease, every commit is fenced by it; without
    /// one (single-process tests, the conformance check) commits are unconditional.
    fn chain_store(&self, lease: Option<ChainLease>) -> Arc<dyn ChainStore>;
}

/// Why a fenced commit was refused.
#[derive(Debug, thiserror::Error)]
#[error("chain {chain_id}: watcher lease lost (epoch {epoch} is no longer current)")]
pub struct LeaseLost {
    pub chain_id: u64,
    pub epoch: i64,
}

impl From<LeaseLost> for ChainStoreError {
    fn from(err: LeaseLost) -> Self {
        // Retryable from the engine's view: the worker notices the lost lease on its next
        // renewal and stops this watcher; until then each step is refused, never applied.
        ChainStoreError::Unavailable(Box::new(err))
    }
}

/// Database errors seen by the engine: connection-level trouble is retryable, like every
/// other sqlx error here (constraint violations cannot happen on these idempotent writes).
pub(super) fn chain_err(err: sqlx::Error) -> ChainStoreError {
    ChainStoreError::Unavailable(Box::new(err))
}

/// Converts a stored 32-byte hash, refusing corrupt lengths.
pub(super) fn b256(bytes: &[u8]) -> Result<alloy::primitives::B256, ChainStoreError> {
    if bytes.len() != 32 {
        return Err(ChainStoreError::Corrupt(format!(
            "hash of {} bytes",
            bytes.len()
        )));
    }
    Ok(alloy::primitives::B256::from_slice(bytes))
}

/// Column list shared by trigger reads on both backends.
pub(super) const TRIGGER_COLUMNS: &str =
    "id, channel_id, spec, revision, start_block, scanned_to, paused, created_at, updated_at";

/// A `triggers` row as read with [`TRIGGER_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(super) struct TriggerRow {
    id: String,
    channel_id: String,
    spec: String,
    revision: i64,
    start_block: i64,
    scanned_to: Option<i64>,
    paused: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TriggerRow {
    pub(super) fn into_trigger(self) -> StoreResult<Trigger> {
        let spec = serde_json::from_str(&self.spec)
            .map_err(|e| super::StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Trigger {
            id: TriggerId::from_trusted(self.id),
            channel_id: ChannelId::from_trusted(self.channel_id),
            spec,
            revision: self.revision as u64,
            start_block: self.start_block as u64,
            scanned_to: self.scanned_to.map(|b| b as u64),
            paused: self.paused,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A timestamp far in the past: what a released lease expires at.
pub(super) fn long_ago() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// `now + ttl`, saturating on absurd TTLs.
pub(super) fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1))
}

/// A pending `chain_events` row: trigger, tx hash, position, block, block hash, log index,
/// address, text, ready_at.
pub(super) type EventRow = (
    String,
    Vec<u8>,
    i32,
    i64,
    Vec<u8>,
    i64,
    Vec<u8>,
    String,
    i64,
);

pub(super) fn block_ref(
    (number, hash, parent): (i64, Vec<u8>, Vec<u8>),
) -> Result<BlockRef, ChainStoreError> {
    Ok(BlockRef {
        number: number as u64,
        hash: b256(&hash)?,
        parent_hash: b256(&parent)?,
    })
}

pub(super) fn pending_event(
    chain_id: u64,
    (trigger_id, tx, position, number, hash, index, address, text, ready_at): EventRow,
) -> Result<MatchedEvent, ChainStoreError> {
    if address.len() != 20 {
        return Err(ChainStoreError::Corrupt("stored log address".into()));
    }
    Ok(MatchedEvent {
        key: EventKey {
            trigger_id,
            chain_id,
            tx_hash: b256(&tx)?,
            log_position: position as u32,
        },
        block_number: number as u64,
        block_hash: b256(&hash)?,
        log_index: index as u64,
        address: alloy::primitives::Address::from_slice(&address),
        text,
        status: EventStatus::Pending {
            ready_at: ready_at as u64,
        },
    })
}

pub(super) fn trigger_record(
    (id, spec, revision, start_block, scanned_to): (String, String, i64, i64, Option<i64>),
) -> Result<TriggerRecord, ChainStoreError> {
    let spec = serde_json::from_str(&spec)
        .map_err(|e| ChainStoreError::Corrupt(format!("trigger {id} spec: {e}")))?;
    Ok(TriggerRecord {
        id,
        revision: revision as u64,
        spec,
        start_block: start_block as u64,
        scanned_to: scanned_to.map(|b| b as u64),
    })
}
