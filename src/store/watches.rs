//! Watches: a channel's per-subscriber conditions on chain state, and each subscriber's state
//! for the re-arm rule.
//!
//! [`WatchStore`] is a supertrait of [`Store`](super::Store); its SQL is portable and written
//! once in `watches_sql.rs`. The evaluator (`workers::watch_evaluator`) runs under the chain's
//! watcher lease, and every write it makes ([`WatchStore::commit_watch_page`]) re-checks that
//! lease at its epoch inside the same transaction, like the chain engine's batches: a replica
//! that lost the lease cannot change a subscriber's state or alert anyone.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ChainLease, Page, StoreResult};
use crate::chain::watch::rule::SubscriberState;
use crate::chain::watch::WatchSpec;
use crate::domain::{ChannelId, TenantId, WatchId};

/// A watch as the API shows it.
#[derive(Debug, Clone)]
pub struct Watch {
    pub id: WatchId,
    pub channel_id: ChannelId,
    pub spec: WatchSpec,
    /// Bumped on every edit of the condition, rearm condition or template.
    pub revision: u64,
    pub paused: bool,
    /// The last block at which every subscriber was evaluated.
    pub evaluated_block: Option<u64>,
    /// Subscribers currently disarmed (alerted, waiting for the re-arm condition).
    pub alerted: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated watch to store.
#[derive(Debug, Clone)]
pub struct NewWatch {
    pub id: WatchId,
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub spec: WatchSpec,
}

/// Changes to a watch; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct WatchPatch {
    pub paused: Option<bool>,
    /// A new (already validated) spec; bumps the revision so the evaluator recompiles it.
    /// Subscribers keep their state.
    pub spec: Option<WatchSpec>,
}

/// An active watch as the evaluator reads it.
#[derive(Debug, Clone)]
pub struct WatchRecord {
    pub id: WatchId,
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub spec: WatchSpec,
    pub revision: u64,
    pub evaluated_block: Option<u64>,
}

/// One subscriber to evaluate, with its stored state (`None`: the initial state).
#[derive(Debug, Clone)]
pub struct WatchTarget {
    /// Lowercase hex address, as subscribers are stored.
    pub address: String,
    pub state: Option<SubscriberState>,
}

/// A subscriber whose state changed in an evaluation.
#[derive(Debug, Clone)]
pub struct WatchChange {
    pub address: String,
    pub state: SubscriberState,
    /// The condition's first compared output at this block, as text (for operators).
    pub value: Option<String>,
    /// The alert text, when the change is an alert: sent to this subscriber only.
    pub alert: Option<String>,
}

/// What committing one page of an evaluation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCommit {
    /// Written; this many alerts became announcements.
    Done { alerts: u64 },
    /// The watch was paused, edited or deleted meanwhile: nothing written.
    Stale,
    /// The chain's lease is no longer held at this epoch: nothing written.
    LeaseLost,
}

/// Watch CRUD and the evaluator's reads and fenced writes.
#[async_trait]
pub trait WatchStore: Send + Sync {
    /// Stores a watch on the tenant's live channel; `None` when the channel is missing,
    /// deleted or another tenant's.
    async fn create_watch(&self, new: &NewWatch) -> StoreResult<Option<Watch>>;
    /// Watches of a channel ordered by id after `page.cursor`; `None` if the channel is not
    /// the tenant's.
    async fn list_watches(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Option<Vec<Watch>>>;
    async fn get_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
    ) -> StoreResult<Option<Watch>>;
    async fn update_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
        patch: &WatchPatch,
    ) -> StoreResult<Option<Watch>>;
    /// Soft-deletes a watch and drops its subscriber states; false if there was none.
    async fn delete_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
    ) -> StoreResult<bool>;

    /// Unpaused watches of live channels on a chain, ordered by id.
    async fn active_watches(&self, chain_id: u64) -> StoreResult<Vec<WatchRecord>>;
    /// Up to `limit` active subscribers of the watch's channel (only those receiving its
    /// topic, if it has one) with addresses after `after`, in address order, with their state.
    async fn watch_targets(
        &self,
        watch: &WatchRecord,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<WatchTarget>>;
    /// In one transaction fenced by `lease`: checks the watch is still at `watch.revision`
    /// and active, writes the changed states, creates one announcement per alert addressed to
    /// that subscriber only (through the durable delivery pipeline), and, when `round_done`,
    /// records `block` as the watch's evaluated block.
    async fn commit_watch_page(
        &self,
        lease: &ChainLease,
        watch: &WatchRecord,
        block: u64,
        changes: &[WatchChange],
        round_done: bool,
    ) -> StoreResult<PageCommit>;
}
