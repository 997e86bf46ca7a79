//! The logs half of scanning a block range: the merged `eth_getLogs` (shrinking the range when
//! a provider refuses it), matching on a blocking thread after checking each log against the
//! canonical hashes, and keying each match by its position inside its transaction.

use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;

use alloy::primitives::B256;
use alloy::rpc::types::Log;

use super::scan::IN_FLIGHT;
use super::{Watcher, WatcherError};

use crate::chain::matcher::{Candidate, TriggerSet};
use crate::chain::rpc::RpcError;
use crate::chain::store::{EventKey, EventStatus, MatchedEvent};
use crate::chain::trigger::LogMeta;

impl Watcher {
    /// `eth_getLogs` for `set` over `[from, to]`. `Ok(None)` when the provider refused the
    /// range and it was halved (the caller reports `RangeShrunk`).
    pub(super) async fn fetch_logs(
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
    pub(super) async fn match_logs(
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

    /// Turns candidates into events keyed by (trigger, tx, position in tx), deciding whether
    /// each is announced now or waits for its trigger's confirmations.
    pub(super) async fn to_events(
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
