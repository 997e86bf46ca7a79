//! One watcher step's heavy half: scanning a block range (header linkage checks, then the
//! range's logs through `logs.rs`) and reorg detection/rollback.

use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;

use alloy::primitives::B256;

use super::{Outcome, StepReport, Watcher, WatcherError};
use std::sync::Arc;

use crate::chain::matcher::{ActiveTrigger, TriggerSet};
use crate::chain::metrics;
use crate::chain::rpc::RpcError;
use crate::chain::store::{BlockRef, ChainBatch, EventKey};

/// Concurrent header/receipt requests per step.
pub(super) const IN_FLIGHT: usize = 4;

impl Watcher {
    pub(super) async fn scan(
        &mut self,
        cursor: BlockRef,
        from: u64,
        to: u64,
        latest: u64,
        safe: u64,
        promote: Vec<EventKey>,
    ) -> Result<Outcome, WatcherError> {
        let set = std::mem::take(&mut self.triggers);
        let fetched = self.fetch_logs(&set, from, to).await;
        self.triggers = set;
        let logs = match fetched? {
            Some(logs) => logs,
            None => return Ok(Outcome::RangeShrunk { range: self.range }),
        };
        let headers = self.headers(cursor, from, to, latest).await?;
        let hot: HashMap<u64, B256> = headers.iter().map(|b| (b.number, b.hash)).collect();
        let (logs, candidates) = self.match_logs(&self.triggers, logs, hot).await?;
        let events = self.to_events(&self.triggers, candidates, latest).await?;
        let matched = events.len();
        let last = *headers.last().unwrap_or(&cursor);
        let scanned_to = self
            .triggers
            .triggers()
            .iter()
            .map(|t| (t.id.clone(), to))
            .collect();
        let batch = ChainBatch {
            events,
            promote,
            window_add: headers,
            scanned_to,
            ..self.batch(last)
        };
        let summary = self.commit(batch).await?;
        self.grow_range();
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

    /// Scans `[from, to]` for one trigger that lags the cursor (all blocks already below the
    /// safe head), without moving the chain cursor.
    pub(super) async fn catch_up(
        &mut self,
        trigger: Arc<ActiveTrigger>,
        cursor: BlockRef,
        latest: u64,
    ) -> Result<Outcome, WatcherError> {
        let scanned = self
            .scanned
            .get(&trigger.id)
            .copied()
            .unwrap_or(cursor.number);
        let floor = cursor.number.saturating_sub(self.chain.max_backfill_blocks) + 1;
        let mut from = (scanned + 1).max(trigger.start_block);
        if from < floor {
            tracing::warn!(
                chain.id = self.chain.chain_id,
                trigger.id = %trigger.id,
                skipped_from = from,
                skipped_to = floor - 1,
                "history older than max_backfill_blocks is skipped"
            );
            from = floor;
        }
        let to = cursor.number.min(from.saturating_add(self.range - 1));
        let set = TriggerSet::new(vec![trigger.clone()]);
        let Some(logs) = self.fetch_logs(&set, from, to).await? else {
            return Ok(Outcome::RangeShrunk { range: self.range });
        };
        // Blocks still in the window must match the hashes we followed; older ones are
        // deeper than any reorg we handle.
        let known: HashMap<u64, B256> = self
            .memory()
            .window
            .range(from..=to)
            .map(|(n, b)| (*n, b.hash))
            .collect();
        let (logs, candidates) = self.match_logs(&set, logs, known).await?;
        let events = self.to_events(&set, candidates, latest).await?;
        let matched = events.len();
        let batch = ChainBatch {
            events,
            scanned_to: vec![(trigger.id.clone(), to)],
            ..self.batch(cursor)
        };
        let summary = self.commit(batch).await?;
        self.grow_range();
        metrics::logs(self.chain.chain_id, logs.len(), matched, summary.announced);
        let report = StepReport {
            from,
            to,
            logs: logs.len(),
            matched,
            announced: summary.announced,
            pending: summary.pending,
            duplicates: summary.duplicates,
            behind: to < cursor.number,
        };
        Ok(Outcome::CaughtUp {
            trigger_id: trigger.id.clone(),
            report,
        })
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
        // A few requests in flight hide round-trip latency; the rate limit still applies.
        let headers: Vec<BlockRef> = stream::iter(hot_from.min(to)..=to)
            .map(|number| self.rpc.block(number))
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
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

    /// Detects a reorg at the cursor; on one, finds the fork point and commits the rollback.
    pub(super) async fn check_reorg(
        &mut self,
        cursor: BlockRef,
    ) -> Result<Option<Outcome>, WatcherError> {
        if self.canonical_hash(cursor.number).await? == Some(cursor.hash) {
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
            if self.canonical_hash(block.number).await? == Some(block.hash) {
                let depth = cursor.number - block.number;
                tracing::warn!(
                    chain.id = self.chain.chain_id,
                    chain.block = block.number,
                    depth,
                    "reorg detected; rolling back to the fork point"
                );
                metrics::reorg(self.chain.chain_id);
                let batch = ChainBatch {
                    rollback_above: Some(block.number),
                    ..self.batch(block)
                };
                self.commit(batch).await?;
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

    fn grow_range(&mut self) {
        self.range = self
            .range
            .saturating_mul(2)
            .min(self.chain.max_block_range.max(1));
    }

    /// The node's hash for block `number`, or `None` when the chain no longer has it (it got
    /// shorter, as after `anvil_rollback`): treated as a mismatch so we walk back.
    async fn canonical_hash(&self, number: u64) -> Result<Option<B256>, WatcherError> {
        match self.rpc.block(number).await {
            Ok(block) => Ok(Some(block.hash)),
            Err(RpcError::MissingBlock(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}
