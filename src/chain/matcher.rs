//! The set of active triggers of one chain: merged `eth_getLogs` filter and per-log matching
//! (decode, condition, render). Pure and synchronous, so the benchmark drives it directly.

use alloy::primitives::{Address, LogData, B256};
use alloy::rpc::types::Filter;
use std::collections::HashMap;
use std::sync::Arc;

use super::config::ChainConfig;
use super::trigger::{CompiledTrigger, LogMeta};

/// A compiled trigger plus the bookkeeping the watcher needs.
#[derive(Debug)]
pub struct ActiveTrigger {
    pub id: String,
    pub revision: u64,
    pub start_block: u64,
    /// The spec's opt-in history start, if any.
    pub from_block: Option<u64>,
    pub compiled: CompiledTrigger,
}

/// A log that passed a trigger's condition, with its rendered text.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Index into [`TriggerSet::triggers`].
    pub trigger: usize,
    pub meta: LogMeta,
    pub text: String,
}

/// Active triggers indexed by `(contract address, topic0)`. Cloning shares the triggers.
#[derive(Debug, Default, Clone)]
pub struct TriggerSet {
    triggers: Vec<Arc<ActiveTrigger>>,
    index: HashMap<(Address, B256), Vec<usize>>,
}

impl TriggerSet {
    pub fn new(triggers: Vec<Arc<ActiveTrigger>>) -> Self {
        let mut index: HashMap<(Address, B256), Vec<usize>> = HashMap::new();
        for (i, t) in triggers.iter().enumerate() {
            for address in &t.compiled.addresses {
                index
                    .entry((*address, t.compiled.event.topic0()))
                    .or_default()
                    .push(i);
            }
        }
        Self { triggers, index }
    }

    pub fn triggers(&self) -> &[Arc<ActiveTrigger>] {
        &self.triggers
    }

    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// Smallest confirmation depth among the triggers: how far the chain cursor may advance.
    pub fn min_confirmations(&self) -> Option<u64> {
        self.triggers.iter().map(|t| t.compiled.confirmations).min()
    }

    /// One `eth_getLogs` filter covering every trigger: all addresses, all topic0s. The node
    /// may return some (address, topic0) pairs nobody asked for; `match_log` drops them.
    pub fn filter(&self, from: u64, to: u64) -> Filter {
        let mut addresses: Vec<Address> = self.index.keys().map(|(a, _)| *a).collect();
        let mut topics: Vec<B256> = self.index.keys().map(|(_, t)| *t).collect();
        addresses.sort_unstable();
        addresses.dedup();
        topics.sort_unstable();
        topics.dedup();
        Filter::new()
            .address(addresses)
            .event_signature(topics)
            .from_block(from)
            .to_block(to)
    }

    /// Evaluates one log against every trigger watching its (address, topic0), appending a
    /// candidate per match. Logs that fail to decode or render are skipped with a warning:
    /// one malformed log must not stall the chain.
    pub fn match_log(
        &self,
        data: &LogData,
        meta: &LogMeta,
        chain: &ChainConfig,
        out: &mut Vec<Candidate>,
    ) -> usize {
        let Some(topic0) = data.topics().first() else {
            return 0;
        };
        let Some(list) = self.index.get(&(meta.address, *topic0)) else {
            return 0;
        };
        let mut matched = 0;
        for &i in list {
            let trigger = &self.triggers[i];
            if meta.block_number < trigger.start_block {
                continue;
            }
            match trigger.compiled.evaluate(data, meta, chain) {
                Ok(Some(text)) => {
                    matched += 1;
                    out.push(Candidate {
                        trigger: i,
                        meta: *meta,
                        text,
                    });
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(
                    chain.id = chain.chain_id,
                    trigger.id = %trigger.id,
                    tx.hash = %meta.tx_hash,
                    log.index = meta.log_index,
                    "skipping log: {err}"
                ),
            }
        }
        matched
    }
}
