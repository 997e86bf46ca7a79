//! One watcher step's heavy half: scanning a block range (merged `eth_getLogs`, header
//! linkage checks, matching, positions inside transactions) and reorg detection/rollback.

use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;

use alloy::primitives::B256;

use super::{Outcome, StepReport, Watcher, WatcherError};
use alloy::rpc::types::Log;
use std::sync::Arc;

use crate::chain::matcher::{ActiveTrigger, Candidate, TriggerSet};
use crate::chain::metrics;
use crate::chain::rpc::RpcError;
use crate::chain::store::{BlockRef, ChainBatch, EventKey, EventStatus, MatchedEvent};
use crate::chain::trigger::LogMeta;

/// Concurrent header/receipt requests per step.
const IN_FLIGHT: usize = 4;

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

    /// `eth_getLogs` for `set` over `[from, to]`. `Ok(None)` when the provider refused the
    /// range and it was halved (the caller reports `RangeShrunk`).
    async fn fetch_logs(
        &mut self,
        set: &TriggerSet,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<Log>>, WatcherError> {
        if set.is_empty() {
            return Ok(Some(Vec::new()));
        }
        match self.rpc.logs(&set.filter(from, to)).await {
            Ok(logs) => Ok(Some(logs)),
            Err(err) => {
                // Halve on any getLogs failure: range errors say so explicitly, and
                // timeouts on wide ranges are the same problem phrased differently.
                let span = to - from + 1;
                self.range = (span / 2).max(1);
                if let RpcError::RangeTooLarge(detail) = &err {
                    // Some providers say which range would work; trust it when it is smaller.
                    if let Some(hint) = suggested_span(detail).filter(|h| *h < span) {
                        self.range = hint.max(1);
                    }
                }
                match err {
                    RpcError::RangeTooLarge(_) if span > 1 => Ok(None),
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Checks each log against the canonical hashes we know and runs the matcher on a
    /// blocking thread: decoding and rendering templates is CPU work (bounded per log by the
    /// template sandbox) that must not hold up the async runtime. Hands `logs` back.
    async fn match_logs(
        &self,
        set: &TriggerSet,
        logs: Vec<Log>,
        canonical: HashMap<u64, B256>,
    ) -> Result<(Vec<Log>, Vec<Candidate>), WatcherError> {
        let set = set.clone();
        let chain = self.chain.clone();
        let task = tokio::task::spawn_blocking(move || {
            let matched = match_logs(&set, &logs, &canonical, &chain);
            (logs, matched)
        });
        match task.await {
            Ok((logs, matched)) => Ok((logs, matched?)),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(WatcherError::Inconsistent(format!(
                "matching cancelled: {e}"
            ))),
        }
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

    /// Turns candidates into events keyed by (trigger, tx, position in tx), deciding whether
    /// each is announced now or waits for its trigger's confirmations.
    async fn to_events(
        &self,
        set: &TriggerSet,
        candidates: Vec<Candidate>,
        latest: u64,
    ) -> Result<Vec<MatchedEvent>, WatcherError> {
        let mut txs: Vec<B256> = candidates.iter().map(|c| c.meta.tx_hash).collect();
        txs.sort_unstable();
        txs.dedup();
        let bases: HashMap<B256, Option<(B256, u64)>> = stream::iter(txs)
            .map(|tx| async move { self.rpc.tx_log_base(tx).await.map(|base| (tx, base)) })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut events = Vec::with_capacity(candidates.len());
        for c in candidates {
            let Some(base) = bases.get(&c.meta.tx_hash).copied().flatten() else {
                return Err(WatcherError::Inconsistent(format!(
                    "receipt of {} not found",
                    c.meta.tx_hash
                )));
            };
            if base.0 != c.meta.block_hash || c.meta.log_index < base.1 {
                return Err(WatcherError::Inconsistent(format!(
                    "receipt of {} is from another block",
                    c.meta.tx_hash
                )));
            }
            let trigger = &set.triggers()[c.trigger];
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

/// Parses a provider hint such as Alchemy's "this block range should work: [0x10, 0x2f]" into a
/// span (here 32 blocks).
fn suggested_span(message: &str) -> Option<u64> {
    let inner = &message[message.find('[')? + 1..];
    let inner = &inner[..inner.find(']')?];
    let (a, b) = inner.split_once(',')?;
    let parse = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok();
    let (a, b) = (parse(a)?, parse(b)?);
    (b >= a).then(|| b - a + 1)
}

/// [`Watcher::match_logs`]'s work.
fn match_logs(
    set: &TriggerSet,
    logs: &[Log],
    canonical: &HashMap<u64, B256>,
    chain: &crate::chain::ChainConfig,
) -> Result<Vec<Candidate>, WatcherError> {
    let mut candidates = Vec::new();
    for log in logs {
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
        if log.removed
            || canonical
                .get(&block_number)
                .is_some_and(|h| *h != block_hash)
        {
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
        set.match_log(&log.inner.data, &meta, chain, &mut candidates);
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::suggested_span;

    #[test]
    fn provider_range_hints_are_parsed() {
        let alchemy = "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x1234, 0x1243]";
        assert_eq!(suggested_span(alchemy), Some(16));
        assert_eq!(
            suggested_span("query returned more than 10000 results"),
            None
        );
        assert_eq!(suggested_span("range [0x10, 0x5]"), None);
    }
}
