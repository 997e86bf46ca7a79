//! The persistence contract of the chain watcher, and an in-memory implementation for tests.
//!
//! The service implements [`ChainStore`] on SQL. `commit_batch` must be ONE transaction that,
//! in this order:
//! 1. if `rollback_above` is set, deletes window blocks and events above it; an event that
//!    was already announced (possible when a trigger's `confirmations` is below the reorg
//!    depth) gets a retraction announcement first (a sent message cannot be unsent, so its
//!    recipients are told), and if the new chain includes the log again it is announced anew;
//! 2. inserts `events`, skipping keys that already exist (`ON CONFLICT DO NOTHING` on the
//!    unique key below): that uniqueness is what makes a log announced at most once (per
//!    inclusion in the canonical chain, see 1.);
//! 3. creates an announcement (+ delivery rows) for every inserted `Ready` event and for every
//!    `promote` key that is still pending, marking those events announced;
//! 4. inserts `window_add`, deletes window blocks below `window_prune_below`;
//! 5. upserts the chain cursor and sets `scanned_to` on the listed triggers.
//!
//! If it fails, nothing happened: the watcher reloads its state and redoes the range.
//!
//! A schema that fits (Postgres spelling; SQLite alike):
//! ```sql
//! chain_cursors (chain_id BIGINT PRIMARY KEY, block_number BIGINT, block_hash BYTEA, parent_hash BYTEA)
//! chain_blocks  (chain_id BIGINT, block_number BIGINT, block_hash BYTEA, parent_hash BYTEA,
//!                PRIMARY KEY (chain_id, block_number))
//! chain_events  (trigger_id TEXT, chain_id BIGINT, tx_hash BYTEA, log_position INT,
//!                block_number BIGINT, block_hash BYTEA, log_index BIGINT, address BYTEA,
//!                text TEXT, ready_at BIGINT NULL /* NULL = announced */, announcement_id ...,
//!                PRIMARY KEY (trigger_id, chain_id, tx_hash, log_position))
//! triggers      (..., spec JSONB, revision BIGINT, start_block BIGINT, scanned_to BIGINT NULL,
//!                paused BOOL)
//! ```
//! `active_triggers` returns the non-paused, non-deleted triggers of the chain. When a paused
//! trigger is resumed and events of the pause must not be announced, reset its `start_block`
//! to the cursor + 1 and `scanned_to` to NULL (otherwise the watcher catches it up).

use alloy::primitives::{Address, B256};
use async_trait::async_trait;

use super::trigger::TriggerSpec;

// Test support: an in-memory store and the contract check every backend must pass. Built
// for this crate's tests and, through the `test-util` feature, for the integration tests.
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
#[cfg(any(test, feature = "test-util"))]
mod memory;

#[cfg(any(test, feature = "test-util"))]
pub use memory::{Announced, MemoryChainStore};

/// A block header reduced to what reorg detection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
}

/// A trigger as stored by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRecord {
    /// Service-side id (opaque here), copied into every matched event.
    pub id: String,
    /// Bumped on every edit so the watcher knows to recompile.
    pub revision: u64,
    pub spec: TriggerSpec,
    /// Logs in blocks below this are ignored for this trigger: set it to the chain's safe head
    /// at creation (or `from_block` for an opt-in backfill).
    pub start_block: u64,
    /// Highest block already scanned for this trigger, maintained by the watcher through
    /// [`ChainBatch::scanned_to`]; `None` for a new trigger (or after its start was moved).
    /// A trigger whose scan lags the chain cursor (new, or created with an old `from_block`)
    /// is caught up on its own, capped at `max_backfill_blocks`, before joining the shared scan.
    pub scanned_to: Option<u64>,
}

impl TriggerRecord {
    /// A new trigger as the API should store it: history from `spec.from_block` when given,
    /// otherwise live from the block after the chain's cursor (`None` before the watcher's
    /// first run: it then starts the trigger at its own starting block).
    pub fn new(id: impl Into<String>, spec: TriggerSpec, chain_cursor: Option<u64>) -> Self {
        let start_block = spec.from_block.unwrap_or(chain_cursor.map_or(0, |c| c + 1));
        Self {
            id: id.into(),
            revision: 1,
            spec,
            start_block,
            scanned_to: None,
        }
    }
}

/// Identity of a matched event: one trigger, one log. The log is identified by its transaction
/// and its position inside that transaction, not by the block-wide log index, so a transaction
/// re-included at another height after a reorg keeps the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub trigger_id: String,
    pub chain_id: u64,
    pub tx_hash: B256,
    pub log_position: u32,
}

/// Whether an event's announcement is created now or after more confirmations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Deep enough: create the announcement in this transaction.
    Ready,
    /// Matched but waiting until the head reaches `ready_at` (block + trigger confirmations).
    Pending { ready_at: u64 },
}

/// A log that matched a trigger, with its announcement text already rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedEvent {
    pub key: EventKey,
    pub block_number: u64,
    pub block_hash: B256,
    /// Block-wide log index (informational; not part of the identity).
    pub log_index: u64,
    pub address: Address,
    pub text: String,
    pub status: EventStatus,
}

/// What the watcher persisted last time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainState {
    /// Last block fully processed, or `None` for a chain never watched.
    pub cursor: Option<BlockRef>,
    /// Recent processed blocks, ascending by number.
    pub window: Vec<BlockRef>,
    /// Matched events not yet announced.
    pub pending: Vec<MatchedEvent>,
}

/// Everything one watcher step changes, applied atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainBatch {
    pub chain_id: u64,
    /// Reorg: first delete window blocks and pending events above this height.
    pub rollback_above: Option<u64>,
    /// New events; `Ready` ones get their announcement now. Existing keys are skipped.
    pub events: Vec<MatchedEvent>,
    /// Pending events that became ready: create their announcements and mark them announced.
    pub promote: Vec<EventKey>,
    /// Blocks to add to the window.
    pub window_add: Vec<BlockRef>,
    /// Window blocks below this height can be forgotten.
    pub window_prune_below: u64,
    /// The new cursor.
    pub cursor: BlockRef,
    /// New `scanned_to` values for triggers (by id).
    pub scanned_to: Vec<(String, u64)>,
}

/// What a commit did (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitSummary {
    /// Announcements created (ready events + promotions).
    pub announced: usize,
    /// New pending events stored.
    pub pending: usize,
    /// Events skipped because their key already existed.
    pub duplicates: usize,
    /// Ready events a store wrapper kept pending instead of announcing (a tenant over its
    /// pending-deliveries quota; see `workers::chain_quota`). The watcher then reloads its
    /// state, so memory matches what was stored, and promotes them in a later step.
    pub deferred: usize,
    /// Announced events above a rollback's fork that got a retraction announcement.
    pub retracted: usize,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ChainStoreError {
    /// Connection/timeout/serialization failure: retry the step later.
    #[error("chain store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Broken invariant (e.g. corrupt row): retrying will not help.
    #[error("chain store corrupt: {0}")]
    Corrupt(String),
}

impl ChainStoreError {
    /// Whether the watcher should simply try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ChainStoreError::Unavailable(_))
    }
}

/// Persistence used by the chain watcher.
#[async_trait]
pub trait ChainStore: Send + Sync {
    /// Cursor, window and pending events of one chain.
    async fn load_state(&self, chain_id: u64) -> Result<ChainState, ChainStoreError>;
    /// Triggers of the chain that are active (not paused, not deleted).
    async fn active_triggers(&self, chain_id: u64) -> Result<Vec<TriggerRecord>, ChainStoreError>;
    /// Applies a batch in one transaction (see the module docs).
    async fn commit_batch(&self, batch: ChainBatch) -> Result<CommitSummary, ChainStoreError>;
}
