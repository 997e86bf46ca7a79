//! An in-memory [`ChainStore`] with the same semantics the SQL implementation must have; used
//! by the engine's tests and benchmarks, and as the reference for the conformance check.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{
    BlockRef, ChainBatch, ChainState, ChainStore, ChainStoreError, CommitSummary, EventKey,
    EventStatus, MatchedEvent, TriggerRecord,
};

/// One announcement created by [`MemoryChainStore`] (what the SQL store inserts as a row).
#[derive(Debug, Clone, PartialEq)]
pub struct Announced {
    pub key: EventKey,
    pub block_number: u64,
    pub text: String,
}

#[derive(Default)]
struct Inner {
    cursors: HashMap<u64, BlockRef>,
    windows: HashMap<u64, BTreeMap<u64, BlockRef>>,
    events: BTreeMap<EventKey, MatchedEvent>,
    announced: Vec<Announced>,
    retracted: Vec<Announced>,
    triggers: HashMap<u64, Vec<TriggerRecord>>,
}

/// An in-memory [`ChainStore`] with the same semantics as the SQL one; for tests and benches.
#[derive(Default)]
pub struct MemoryChainStore {
    inner: Mutex<Inner>,
}

impl MemoryChainStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces (by id) an active trigger.
    pub fn put_trigger(&self, chain_id: u64, record: TriggerRecord) {
        let mut inner = self.lock();
        let list = inner.triggers.entry(chain_id).or_default();
        list.retain(|t| t.id != record.id);
        list.push(record);
    }

    /// Removes a trigger (pause/delete).
    pub fn remove_trigger(&self, chain_id: u64, id: &str) {
        self.lock()
            .triggers
            .entry(chain_id)
            .or_default()
            .retain(|t| t.id != id);
    }

    /// Announcements created so far, in creation order.
    pub fn announced(&self) -> Vec<Announced> {
        self.lock().announced.clone()
    }

    /// Announced events a reorg removed (each would get a retraction), in order.
    pub fn retracted(&self) -> Vec<Announced> {
        self.lock().retracted.clone()
    }

    /// Events still waiting for confirmations.
    pub fn pending(&self, chain_id: u64) -> Vec<MatchedEvent> {
        let inner = self.lock();
        inner
            .events
            .values()
            .filter(|e| {
                e.key.chain_id == chain_id && matches!(e.status, EventStatus::Pending { .. })
            })
            .cloned()
            .collect()
    }

    /// The stored cursor.
    pub fn cursor(&self, chain_id: u64) -> Option<BlockRef> {
        self.lock().cursors.get(&chain_id).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock in a test must not hide the original failure.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ChainStore for MemoryChainStore {
    async fn load_state(&self, chain_id: u64) -> Result<ChainState, ChainStoreError> {
        let inner = self.lock();
        Ok(ChainState {
            cursor: inner.cursors.get(&chain_id).copied(),
            window: inner
                .windows
                .get(&chain_id)
                .map(|w| w.values().copied().collect())
                .unwrap_or_default(),
            pending: inner
                .events
                .values()
                .filter(|e| {
                    e.key.chain_id == chain_id && matches!(e.status, EventStatus::Pending { .. })
                })
                .cloned()
                .collect(),
        })
    }

    async fn active_triggers(&self, chain_id: u64) -> Result<Vec<TriggerRecord>, ChainStoreError> {
        Ok(self
            .lock()
            .triggers
            .get(&chain_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn commit_batch(&self, batch: ChainBatch) -> Result<CommitSummary, ChainStoreError> {
        // The whole batch is applied under one lock: the in-memory analogue of a transaction.
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut summary = CommitSummary::default();
        let chain = batch.chain_id;
        if let Some(fork) = batch.rollback_above {
            if let Some(w) = inner.windows.get_mut(&chain) {
                w.retain(|n, _| *n <= fork);
            }
            let mut retracted = Vec::new();
            inner.events.retain(|k, e| {
                let above = k.chain_id == chain && e.block_number > fork;
                if above && matches!(e.status, EventStatus::Ready) {
                    retracted.push(Announced {
                        key: k.clone(),
                        block_number: e.block_number,
                        text: e.text.clone(),
                    });
                }
                !above
            });
            summary.retracted = retracted.len();
            inner.retracted.extend(retracted);
        }
        for event in batch.events {
            if inner.events.contains_key(&event.key) {
                summary.duplicates += 1;
                continue;
            }
            match event.status {
                EventStatus::Ready => {
                    summary.announced += 1;
                    inner.announced.push(Announced {
                        key: event.key.clone(),
                        block_number: event.block_number,
                        text: event.text.clone(),
                    });
                }
                EventStatus::Pending { .. } => summary.pending += 1,
            }
            inner.events.insert(event.key.clone(), event);
        }
        for key in batch.promote {
            if let Some(event) = inner.events.get_mut(&key) {
                if matches!(event.status, EventStatus::Pending { .. }) {
                    event.status = EventStatus::Ready;
                    summary.announced += 1;
                    inner.announced.push(Announced {
                        key,
                        block_number: event.block_number,
                        text: event.text.clone(),
                    });
                }
            }
        }
        let window = inner.windows.entry(chain).or_default();
        for block in batch.window_add {
            window.insert(block.number, block);
        }
        window.retain(|n, _| *n >= batch.window_prune_below);
        inner.cursors.insert(chain, batch.cursor);
        if let Some(triggers) = inner.triggers.get_mut(&chain) {
            for (id, block) in &batch.scanned_to {
                if let Some(t) = triggers.iter_mut().find(|t| &t.id == id) {
                    t.scanned_to = Some(*block);
                }
            }
        }
        Ok(summary)
    }
}
