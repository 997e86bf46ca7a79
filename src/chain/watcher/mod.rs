//! The per-chain follower: HTTP polling is the source of truth.
//!
//! Each [`Watcher::run_once`] step: read the head, compute the safe head (head minus the
//! smallest confirmation depth in use), verify the cursor block is still canonical (else roll
//! back to the fork point found in the window of recent block hashes), then scan the next range
//! of blocks with one merged `eth_getLogs`, match and render, and commit the whole result in
//! one [`ChainStore::commit_batch`]. Events whose trigger wants more confirmations than the
//! cursor has are stored as pending and promoted by a later step, so a reorg drops them.
//!
//! This file holds the step and the loop; `scan.rs` scans ranges and handles reorgs, `logs.rs`
//! fetches, matches and keys a range's logs, `sync.rs` keeps the in-memory state and the
//! compiled triggers in step with the store.

mod logs;
mod scan;
mod sync;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::config::ChainConfig;
use super::matcher::{ActiveTrigger, TriggerSet};
use super::metrics;
use super::rpc::{ChainRpc, RetryPolicy, RpcError};
use super::store::{
    BlockRef, ChainBatch, ChainStore, ChainStoreError, EventKey, EventStatus, MatchedEvent,
};

/// Longest pause between steps after repeated failures.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// What one step did; the loop uses it to decide whether to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First run on this chain: the cursor was set to the current safe head (no history).
    Started { block: u64 },
    /// A range of blocks was scanned and committed.
    Worked(StepReport),
    /// Pending events were promoted; no new blocks.
    Promoted { announced: usize },
    /// Nothing to do until the chain grows.
    Idle,
    /// A reorg was detected; window and pending events above `fork` were dropped.
    Reorg { fork: u64, depth: u64 },
    /// The provider refused the range; the next step uses `range` blocks.
    RangeShrunk { range: u64 },
    /// A lagging trigger (new, or with an old `from_block`) was scanned on its own.
    CaughtUp {
        trigger_id: String,
        report: StepReport,
    },
}

/// Counts for one scanned range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    pub from: u64,
    pub to: u64,
    pub logs: usize,
    pub matched: usize,
    pub announced: usize,
    pub pending: usize,
    pub duplicates: usize,
    /// True when the cursor is still behind the safe head (the loop continues at once).
    pub behind: bool,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// RPC failure; retryable unless the node rejected the request.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Store failure; the in-memory state is dropped and reloaded on the next step.
    #[error(transparent)]
    Store(#[from] ChainStoreError),
    /// The node's answers disagree with each other (a reorg happened mid-step). Retryable.
    #[error("inconsistent chain data: {0}")]
    Inconsistent(String),
    /// No block in the window is still canonical: a reorg deeper than `reorg_window`.
    /// Not retryable: operators must look (the chain is paused).
    #[error("reorg deeper than the window of {window} blocks below block {cursor}")]
    ReorgTooDeep { cursor: u64, window: u64 },
}

impl WatcherError {
    /// Whether the chain must stop until an operator looks: only a reorg deeper than the
    /// window (continuing could announce from the wrong fork or miss events).
    pub fn is_fatal(&self) -> bool {
        matches!(self, WatcherError::ReorgTooDeep { .. })
    }

    /// Whether the same step is expected to succeed when simply tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            WatcherError::Rpc(e) => e.is_retryable(),
            WatcherError::Store(e) => e.is_retryable(),
            WatcherError::Inconsistent(_) => true,
            WatcherError::ReorgTooDeep { .. } => false,
        }
    }
}

/// In-memory copy of the persisted state, valid only after a successful load or commit.
struct Memory {
    cursor: Option<BlockRef>,
    window: BTreeMap<u64, BlockRef>,
    pending: Vec<MatchedEvent>,
}

/// Follows one chain.
pub struct Watcher {
    chain: ChainConfig,
    rpc: ChainRpc,
    store: Arc<dyn ChainStore>,
    memory: Option<Memory>,
    compiled: HashMap<String, Arc<ActiveTrigger>>,
    triggers: TriggerSet,
    /// Effective `scanned_to` per trigger id (see [`super::store::TriggerRecord::scanned_to`]).
    scanned: HashMap<String, u64>,
    range: u64,
}

impl Watcher {
    /// A watcher for `chain` persisting through `store`, with the default RPC retry policy.
    pub fn new(chain: ChainConfig, store: Arc<dyn ChainStore>) -> Result<Self, WatcherError> {
        Self::with_retry_policy(chain, store, RetryPolicy::default())
    }

    /// Same as [`Watcher::new`] with an explicit retry policy (tests use short backoffs).
    pub fn with_retry_policy(
        chain: ChainConfig,
        store: Arc<dyn ChainStore>,
        policy: RetryPolicy,
    ) -> Result<Self, WatcherError> {
        let rpc = ChainRpc::new(&chain, policy)?;
        let range = chain.max_block_range.max(1);
        Ok(Self {
            chain,
            rpc,
            store,
            memory: None,
            compiled: HashMap::new(),
            triggers: TriggerSet::default(),
            scanned: HashMap::new(),
            range,
        })
    }

    /// Current adaptive `eth_getLogs` span.
    pub fn block_range(&self) -> u64 {
        self.range
    }

    /// Runs steps until `cancel` fires. Returns only on cancellation or a fatal error
    /// ([`WatcherError::is_fatal`]); other errors are logged and retried with backoff.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), WatcherError> {
        let poll = Duration::from_millis(self.chain.poll_interval_ms);
        let mut failures: u32 = 0;
        let wake = Arc::new(tokio::sync::Notify::new());
        let ws_cancel = cancel.child_token();
        // Stops the WebSocket task however this function returns.
        let _ws_guard = ws_cancel.clone().drop_guard();
        if let Some(url) = &self.chain.ws_url {
            super::wake::spawn(url.clone(), self.chain.chain_id, wake.clone(), ws_cancel);
        }
        loop {
            let pause = match self.run_once().await {
                Ok(outcome) => {
                    failures = 0;
                    match outcome {
                        Outcome::Worked(report) if report.behind => Duration::ZERO,
                        Outcome::Reorg { .. }
                        | Outcome::RangeShrunk { .. }
                        | Outcome::Started { .. } => Duration::ZERO,
                        _ => poll,
                    }
                }
                Err(err) if err.is_retryable() => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        chain.id = self.chain.chain_id,
                        failures,
                        "chain step failed, retrying: {err}"
                    );
                    poll.saturating_mul(1 << failures.min(6))
                        .min(MAX_ERROR_BACKOFF)
                }
                Err(err) if err.is_fatal() => {
                    tracing::error!(
                        chain.id = self.chain.chain_id,
                        "chain watcher stopped: {err}"
                    );
                    return Err(err);
                }
                Err(err) => {
                    // Retrying the same request will not help by itself, but providers and
                    // their answers change (or an operator fixes the config): keep the chain
                    // alive at the slowest pace rather than silently dead.
                    failures = failures.saturating_add(1);
                    tracing::error!(
                        chain.id = self.chain.chain_id,
                        "chain step rejected, retrying in {MAX_ERROR_BACKOFF:?}: {err}"
                    );
                    MAX_ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
                // A new head over WebSocket ends the sleep early (errors keep their backoff).
                _ = wake.notified(), if failures == 0 => {}
            }
        }
    }

    /// One step (see the module docs). Safe to call at any time; all effects are committed
    /// atomically or not at all.
    #[tracing::instrument(skip_all, fields(chain.id = self.chain.chain_id))]
    pub async fn run_once(&mut self) -> Result<Outcome, WatcherError> {
        if self.memory.is_none() {
            let state = self.store.load_state(self.chain.chain_id).await?;
            self.memory = Some(Memory {
                cursor: state.cursor,
                window: state.window.into_iter().map(|b| (b.number, b)).collect(),
                pending: state.pending,
            });
        }
        self.refresh_triggers().await?;
        let latest = self.rpc.block_number().await?;
        let confirmations = self
            .triggers
            .min_confirmations()
            .unwrap_or(self.chain.confirmations);
        let safe = latest.saturating_sub(confirmations);
        metrics::set_heads(self.chain.chain_id, latest, safe);

        let Some(cursor) = self.memory().cursor else {
            let block = self.rpc.block(safe).await?;
            // Triggers that did not ask for history start live here instead of being
            // caught up over `max_backfill_blocks` of the past.
            let scanned_to = self
                .triggers
                .triggers()
                .iter()
                .filter(|t| t.from_block.is_none())
                .map(|t| (t.id.clone(), block.number))
                .collect();
            let batch = ChainBatch {
                window_add: vec![block],
                scanned_to,
                ..self.batch(block)
            };
            self.commit(batch).await?;
            return Ok(Outcome::Started {
                block: block.number,
            });
        };
        if latest < cursor.number {
            // The node is behind us (a lagging load-balanced replica, or a chain that got
            // shorter). Wait until it passes the cursor again: then the hash check below
            // tells a real reorg from a slow node without rolling back for nothing.
            tracing::debug!(
                chain.id = self.chain.chain_id,
                latest,
                cursor = cursor.number,
                "node is behind the cursor"
            );
            return Ok(Outcome::Idle);
        }
        if let Some(outcome) = self.check_reorg(cursor).await? {
            return Ok(outcome);
        }
        if let Some(trigger) = self.lagging(cursor.number) {
            return self.catch_up(trigger, cursor, latest).await;
        }
        let promote = self.ready_pending(latest);
        if cursor.number >= safe {
            if promote.is_empty() {
                metrics::set_cursor(self.chain.chain_id, cursor.number, safe);
                return Ok(Outcome::Idle);
            }
            let summary = self
                .commit(ChainBatch {
                    promote,
                    ..self.batch(cursor)
                })
                .await?;
            return Ok(Outcome::Promoted {
                announced: summary.announced,
            });
        }
        let from = cursor.number + 1;
        let to = safe.min(from.saturating_add(self.range - 1));
        self.scan(cursor, from, to, latest, safe, promote).await
    }

    /// Pending events of still-active triggers that `latest` has confirmed enough.
    fn ready_pending(&self, latest: u64) -> Vec<EventKey> {
        let active: std::collections::HashSet<&str> = self
            .triggers
            .triggers()
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        self.memory()
            .pending
            .iter()
            .filter(|e| matches!(e.status, EventStatus::Pending { ready_at } if ready_at <= latest))
            .filter(|e| active.contains(e.key.trigger_id.as_str()))
            .map(|e| e.key.clone())
            .collect()
    }

    /// An empty batch that keeps `cursor`; callers fill in what they change.
    fn batch(&self, cursor: BlockRef) -> ChainBatch {
        ChainBatch {
            chain_id: self.chain.chain_id,
            rollback_above: None,
            events: Vec::new(),
            promote: Vec::new(),
            window_add: Vec::new(),
            window_prune_below: cursor.number.saturating_sub(self.chain.reorg_window),
            cursor,
            scanned_to: Vec::new(),
        }
    }

    /// The first trigger whose own scan is behind the chain cursor.
    fn lagging(&self, cursor: u64) -> Option<Arc<ActiveTrigger>> {
        self.triggers
            .triggers()
            .iter()
            .find(|t| self.scanned.get(&t.id).is_some_and(|s| *s < cursor))
            .cloned()
    }

    fn memory(&self) -> &Memory {
        // Every caller runs after run_once loaded the state.
        self.memory
            .as_ref()
            .expect("state loaded at the start of run_once")
    }
}
