//! The per-chain follower: HTTP polling is the source of truth.
//!
//! Each [`Watcher::run_once`] step: read the head, compute the safe head (head minus the
//! smallest confirmation depth in use), verify the cursor block is still canonical (else roll
//! back to the fork point found in the window of recent block hashes), then scan the next range
//! of blocks with one merged `eth_getLogs`, match and render, and commit the whole result in
//! one [`ChainStore::commit_batch`]. Events whose trigger wants more confirmations than the
//! cursor has are stored as pending and promoted by a later step, so a reorg drops them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::config::ChainConfig;
use super::matcher::{ActiveTrigger, Candidate, TriggerSet};
use super::metrics;
use super::rpc::{ChainRpc, RetryPolicy, RpcError};
use super::store::{
    BlockRef, ChainBatch, ChainStore, ChainStoreError, EventKey, EventStatus, MatchedEvent,
};
use super::trigger::LogMeta;

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
            range,
        })
    }

    /// Current adaptive `eth_getLogs` span.
    pub fn block_range(&self) -> u64 {
        self.range
    }

    /// Runs steps until `cancel` fires. Returns only on cancellation or a non-retryable error.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), WatcherError> {
        let poll = Duration::from_millis(self.chain.poll_interval_ms);
        let mut failures: u32 = 0;
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
                Err(err) => {
                    tracing::error!(
                        chain.id = self.chain.chain_id,
                        "chain watcher stopped: {err}"
                    );
                    return Err(err);
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
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
            self.commit(self.batch(None, Vec::new(), Vec::new(), vec![block], block))
                .await?;
            return Ok(Outcome::Started {
                block: block.number,
            });
        };
        if let Some(outcome) = self.check_reorg(cursor).await? {
            return Ok(outcome);
        }
        let promote = self.ready_pending(latest);
        if cursor.number >= safe {
            if promote.is_empty() {
                metrics::set_cursor(self.chain.chain_id, cursor.number, safe);
                return Ok(Outcome::Idle);
            }
            let summary = self
                .commit(self.batch(None, Vec::new(), promote, Vec::new(), cursor))
                .await?;
            return Ok(Outcome::Promoted {
                announced: summary.announced,
            });
        }
        let from = cursor.number + 1;
        let to = safe.min(from.saturating_add(self.range - 1));
        self.scan(cursor, from, to, latest, safe, promote).await
    }

    async fn scan(
        &mut self,
        cursor: BlockRef,
        from: u64,
        to: u64,
        latest: u64,
        safe: u64,
        promote: Vec<EventKey>,
    ) -> Result<Outcome, WatcherError> {
        let logs = if self.triggers.is_empty() {
            Vec::new()
        } else {
            match self.rpc.logs(&self.triggers.filter(from, to)).await {
                Ok(logs) => logs,
                Err(err) => {
                    // Halve on any getLogs failure: range errors say so explicitly, and
                    // timeouts on wide ranges are the same problem phrased differently.
                    let span = to - from + 1;
                    self.range = (span / 2).max(1);
                    return match err {
                        RpcError::RangeTooLarge(_) if span > 1 => {
                            Ok(Outcome::RangeShrunk { range: self.range })
                        }
                        other => Err(other.into()),
                    };
                }
            }
        };
        let headers = self.headers(cursor, from, to, latest).await?;
        let hot: HashMap<u64, BlockRef> = headers.iter().map(|b| (b.number, *b)).collect();

        let mut candidates = Vec::new();
        for log in &logs {
            let (Some(block_number), Some(block_hash), Some(tx_hash), Some(log_index)) = (
                log.block_number,
                log.block_hash,
                log.transaction_hash,
                log.log_index,
            ) else {
                return Err(WatcherError::Inconsistent(
                    "log without block/tx/index (pending log?)".into(),
                ));
            };
            if log.removed || hot.get(&block_number).is_some_and(|b| b.hash != block_hash) {
                return Err(WatcherError::Inconsistent(format!(
                    "log of block {block_number} is not on the canonical chain"
                )));
            }
            let meta = LogMeta {
                address: log.inner.address,
                tx_hash,
                block_number,
                block_hash,
                log_index,
            };
            self.triggers
                .match_log(&log.inner.data, &meta, &self.chain, &mut candidates);
        }
        let events = self.to_events(candidates, latest).await?;
        let matched = events.len();
        let last = *headers.last().unwrap_or(&cursor);
        let summary = self
            .commit(self.batch(None, events, promote, headers, last))
            .await?;
        self.range = self
            .range
            .saturating_mul(2)
            .min(self.chain.max_block_range.max(1));
        metrics::set_cursor(self.chain.chain_id, last.number, safe);
        metrics::logs(self.chain.chain_id, logs.len(), matched, summary.announced);
        Ok(Outcome::Worked(StepReport {
            from,
            to,
            logs: logs.len(),
            matched,
            announced: summary.announced,
            pending: summary.pending,
            duplicates: summary.duplicates,
            behind: to < safe,
        }))
    }

    /// Headers for the part of `[from, to]` inside the reorg window (and always `to`), checked
    /// to link to each other and to the cursor.
    async fn headers(
        &self,
        cursor: BlockRef,
        from: u64,
        to: u64,
        latest: u64,
    ) -> Result<Vec<BlockRef>, WatcherError> {
        let hot_from = from.max(latest.saturating_sub(self.chain.reorg_window) + 1);
        let mut headers = Vec::new();
        for number in hot_from.min(to)..=to {
            headers.push(self.rpc.block(number).await?);
        }
        let mut prev = (headers.first().map(|b| b.number) == Some(from)).then_some(cursor);
        for block in &headers {
            if let Some(p) = prev.filter(|p| p.number + 1 == block.number) {
                if block.parent_hash != p.hash {
                    return Err(WatcherError::Inconsistent(format!(
                        "block {} does not link to block {}",
                        block.number, p.number
                    )));
                }
            }
            prev = Some(*block);
        }
        Ok(headers)
    }

    /// Turns candidates into events keyed by (trigger, tx, position in tx), deciding whether
    /// each is announced now or waits for its trigger's confirmations.
    async fn to_events(
        &self,
        candidates: Vec<Candidate>,
        latest: u64,
    ) -> Result<Vec<MatchedEvent>, WatcherError> {
        let mut bases: HashMap<alloy::primitives::B256, (alloy::primitives::B256, u64)> =
            HashMap::new();
        let mut events = Vec::with_capacity(candidates.len());
        for c in candidates {
            let base = match bases.get(&c.meta.tx_hash) {
                Some(b) => *b,
                None => {
                    let b = self.rpc.tx_log_base(c.meta.tx_hash).await?.ok_or_else(|| {
                        WatcherError::Inconsistent(format!(
                            "receipt of {} not found",
                            c.meta.tx_hash
                        ))
                    })?;
                    bases.insert(c.meta.tx_hash, b);
                    b
                }
            };
            if base.0 != c.meta.block_hash || c.meta.log_index < base.1 {
                return Err(WatcherError::Inconsistent(format!(
                    "receipt of {} is from another block",
                    c.meta.tx_hash
                )));
            }
            let trigger = &self.triggers.triggers()[c.trigger];
            let ready_at = c.meta.block_number + trigger.compiled.confirmations;
            events.push(MatchedEvent {
                key: EventKey {
                    trigger_id: trigger.id.clone(),
                    chain_id: self.chain.chain_id,
                    tx_hash: c.meta.tx_hash,
                    log_position: u32::try_from(c.meta.log_index - base.1).unwrap_or(u32::MAX),
                },
                block_number: c.meta.block_number,
                block_hash: c.meta.block_hash,
                log_index: c.meta.log_index,
                address: c.meta.address,
                text: c.text,
                status: if ready_at <= latest {
                    EventStatus::Ready
                } else {
                    EventStatus::Pending { ready_at }
                },
            });
        }
        Ok(events)
    }

    /// Detects a reorg at the cursor; on one, finds the fork point and commits the rollback.
    async fn check_reorg(&mut self, cursor: BlockRef) -> Result<Option<Outcome>, WatcherError> {
        if self.rpc.block(cursor.number).await?.hash == cursor.hash {
            return Ok(None);
        }
        let stored: Vec<BlockRef> = self
            .memory()
            .window
            .range(..cursor.number)
            .rev()
            .map(|(_, b)| *b)
            .collect();
        for block in stored {
            if self.rpc.block(block.number).await?.hash == block.hash {
                let depth = cursor.number - block.number;
                tracing::warn!(
                    chain.id = self.chain.chain_id,
                    chain.block = block.number,
                    depth,
                    "reorg detected; rolling back to the fork point"
                );
                metrics::reorg(self.chain.chain_id);
                self.commit(self.batch(
                    Some(block.number),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    block,
                ))
                .await?;
                return Ok(Some(Outcome::Reorg {
                    fork: block.number,
                    depth,
                }));
            }
        }
        Err(WatcherError::ReorgTooDeep {
            cursor: cursor.number,
            window: self.chain.reorg_window,
        })
    }

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

    fn batch(
        &self,
        rollback_above: Option<u64>,
        events: Vec<MatchedEvent>,
        promote: Vec<EventKey>,
        window_add: Vec<BlockRef>,
        cursor: BlockRef,
    ) -> ChainBatch {
        ChainBatch {
            chain_id: self.chain.chain_id,
            rollback_above,
            events,
            promote,
            window_add,
            window_prune_below: cursor.number.saturating_sub(self.chain.reorg_window),
            cursor,
        }
    }

    /// Commits and mirrors the batch into memory; on failure forgets memory so the next step
    /// reloads exactly what the store holds.
    async fn commit(
        &mut self,
        batch: ChainBatch,
    ) -> Result<super::store::CommitSummary, WatcherError> {
        let summary = match self.store.commit_batch(batch.clone()).await {
            Ok(s) => s,
            Err(err) => {
                self.memory = None;
                return Err(err.into());
            }
        };
        let memory = self.memory.get_or_insert_with(|| Memory {
            cursor: None,
            window: BTreeMap::new(),
            pending: Vec::new(),
        });
        if let Some(fork) = batch.rollback_above {
            memory.window.retain(|n, _| *n <= fork);
            memory.pending.retain(|e| e.block_number <= fork);
        }
        memory.pending.retain(|e| !batch.promote.contains(&e.key));
        for event in batch
            .events
            .into_iter()
            .filter(|e| matches!(e.status, EventStatus::Pending { .. }))
        {
            if !memory.pending.iter().any(|p| p.key == event.key) {
                memory.pending.push(event);
            }
        }
        for block in batch.window_add {
            memory.window.insert(block.number, block);
        }
        memory.window.retain(|n, _| *n >= batch.window_prune_below);
        memory.cursor = Some(batch.cursor);
        Ok(summary)
    }

    async fn refresh_triggers(&mut self) -> Result<(), WatcherError> {
        let records = self.store.active_triggers(self.chain.chain_id).await?;
        let mut next = HashMap::with_capacity(records.len());
        for record in records {
            if let Some(existing) = self
                .compiled
                .get(&record.id)
                .filter(|t| t.revision == record.revision && t.start_block == record.start_block)
            {
                next.insert(record.id.clone(), existing.clone());
                continue;
            }
            match record.spec.validate(std::slice::from_ref(&self.chain)) {
                Ok(compiled) => {
                    let active = ActiveTrigger {
                        id: record.id.clone(),
                        revision: record.revision,
                        start_block: record.start_block,
                        compiled,
                    };
                    next.insert(record.id, Arc::new(active));
                }
                // Stored triggers were validated on creation; failing now means the chain
                // config changed under them. Skip the trigger rather than stall the chain.
                Err(err) => {
                    tracing::warn!(chain.id = self.chain.chain_id, trigger.id = %record.id, "trigger no longer valid, skipped: {err}")
                }
            }
        }
        let mut list: Vec<_> = next.values().cloned().collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        self.compiled = next;
        self.triggers = TriggerSet::new(list);
        Ok(())
    }

    fn memory(&self) -> &Memory {
        // Every caller runs after run_once loaded the state.
        self.memory
            .as_ref()
            .expect("state loaded at the start of run_once")
    }
}
