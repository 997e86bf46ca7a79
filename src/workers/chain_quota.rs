//! Trigger-driven announcements under the tenant's pending-deliveries quota, like REST ones.
//!
//! [`QuotaGate`] wraps the chain watcher's [`ChainStore`]. Before a batch commits, it asks for
//! each tenant whose trigger would announce in it whether the tenant's unfinished announcements
//! already have `max_pending_deliveries` recipients (the check REST announcements get). If so,
//! that tenant's events are stored *pending* instead of announced: the at-most-once key is
//! taken and nothing is lost, and the watcher promotes them in a later step, once the tenant's
//! deliveries drained below the quota. Other tenants on the same chain are not held up.
//!
//! Like the REST check, it runs before the write (per batch, not per event): a batch that
//! starts under the quota may end a little above it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use crate::chain::store::{
    ChainBatch, ChainState, ChainStore, ChainStoreError, CommitSummary, EventStatus, TriggerRecord,
};
use crate::store::{Store, StoreError};

/// Counts the events a quota held back (`herald_chain_events_deferred_total`).
const DEFERRED: &str = "herald_chain_events_deferred_total";

/// A [`ChainStore`] that defers announcements of tenants over their pending-deliveries quota.
pub struct QuotaGate {
    inner: Arc<dyn ChainStore>,
    store: Arc<dyn Store>,
    /// `[quotas] max_pending_deliveries`; 0 turns the gate off.
    max_pending: u64,
}

impl QuotaGate {
    /// Wraps `inner`; with `max_pending` 0 it is returned as it is.
    pub fn wrap(
        inner: Arc<dyn ChainStore>,
        store: Arc<dyn Store>,
        max_pending: u64,
    ) -> Arc<dyn ChainStore> {
        if max_pending == 0 {
            return inner;
        }
        Arc::new(Self {
            inner,
            store,
            max_pending,
        })
    }

    /// Trigger ids among `ids` whose tenant is at or over the quota now.
    async fn held(&self, ids: HashSet<String>) -> Result<HashSet<String>, StoreError> {
        // By tenant id string (ids are not `Hash`).
        let mut full: HashMap<String, bool> = HashMap::new();
        let mut held = HashSet::new();
        for id in ids {
            // A deleted trigger: the inner store settles its events without a message.
            let Some(tenant) = self.store.trigger_tenant(&id).await? else {
                continue;
            };
            let over = match full.get(tenant.as_str()) {
                Some(over) => *over,
                None => {
                    let pending = self.store.unfinished_recipient_count(&tenant).await?;
                    let over = pending >= self.max_pending;
                    if over {
                        tracing::info!(
                            tenant.id = %tenant,
                            pending,
                            quota = self.max_pending,
                            "trigger announcements wait: pending deliveries at the quota"
                        );
                    }
                    full.insert(tenant.to_string(), over);
                    over
                }
            };
            if over {
                held.insert(id);
            }
        }
        Ok(held)
    }
}

fn unavailable(e: StoreError) -> ChainStoreError {
    ChainStoreError::Unavailable(Box::new(e))
}

#[async_trait]
impl ChainStore for QuotaGate {
    async fn load_state(&self, chain_id: u64) -> Result<ChainState, ChainStoreError> {
        self.inner.load_state(chain_id).await
    }

    async fn active_triggers(&self, chain_id: u64) -> Result<Vec<TriggerRecord>, ChainStoreError> {
        self.inner.active_triggers(chain_id).await
    }

    async fn commit_batch(&self, mut batch: ChainBatch) -> Result<CommitSummary, ChainStoreError> {
        let announcing: HashSet<String> = batch
            .events
            .iter()
            .filter(|e| e.status == EventStatus::Ready)
            .map(|e| e.key.trigger_id.clone())
            .chain(batch.promote.iter().map(|k| k.trigger_id.clone()))
            .collect();
        if announcing.is_empty() {
            return self.inner.commit_batch(batch).await;
        }
        let held = self.held(announcing).await.map_err(unavailable)?;
        if held.is_empty() {
            return self.inner.commit_batch(batch).await;
        }
        let mut deferred = 0;
        for event in &mut batch.events {
            if event.status == EventStatus::Ready && held.contains(&event.key.trigger_id) {
                // Ready at any head: promoted as soon as the quota lets it through.
                event.status = EventStatus::Pending { ready_at: 0 };
                deferred += 1;
            }
        }
        let before = batch.promote.len();
        batch.promote.retain(|k| !held.contains(&k.trigger_id));
        deferred += before - batch.promote.len();
        let mut summary = self.inner.commit_batch(batch).await?;
        summary.deferred = deferred;
        metrics::counter!(DEFERRED).increment(deferred as u64);
        Ok(summary)
    }
}
