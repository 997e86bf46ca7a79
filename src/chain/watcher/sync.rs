//! Keeping a watcher's memory in step with the store: mirroring each committed batch into the
//! in-memory state (or forgetting it when a commit fails), and refreshing the compiled triggers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Memory, Watcher, WatcherError};
use crate::chain::matcher::{ActiveTrigger, TriggerSet};
use crate::chain::store::{ChainBatch, CommitSummary, EventStatus};

impl Watcher {
    /// Commits and mirrors the batch into memory; on failure forgets memory so the next step
    /// reloads exactly what the store holds.
    pub(super) async fn commit(
        &mut self,
        batch: ChainBatch,
    ) -> Result<CommitSummary, WatcherError> {
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
        for (id, block) in batch.scanned_to {
            self.scanned.insert(id, block);
        }
        if summary.deferred > 0 {
            // The store kept some events pending that this batch announced: reload.
            self.memory = None;
        }
        Ok(summary)
    }

    /// Reloads the active triggers, recompiling only those whose revision or start changed.
    pub(super) async fn refresh_triggers(&mut self) -> Result<(), WatcherError> {
        let records = self.store.active_triggers(self.chain.chain_id).await?;
        let mut next = HashMap::with_capacity(records.len());
        let mut changed = Vec::new();
        self.scanned.clear();
        for record in records {
            let scanned = record
                .scanned_to
                .unwrap_or(record.start_block.saturating_sub(1));
            self.scanned.insert(record.id.clone(), scanned);
            if let Some(existing) = self
                .compiled
                .get(&record.id)
                .filter(|t| t.revision == record.revision && t.start_block == record.start_block)
            {
                next.insert(record.id.clone(), existing.clone());
                continue;
            }
            changed.push(record);
        }
        // Validation renders each template on a sample log: CPU work, kept off the runtime.
        let chain = self.chain.clone();
        let validated = tokio::task::spawn_blocking(move || {
            changed
                .into_iter()
                .map(|record| {
                    let outcome = record.spec.validate(std::slice::from_ref(&chain));
                    (record, outcome)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        for (record, outcome) in validated {
            match outcome {
                Ok(compiled) => {
                    let active = ActiveTrigger {
                        from_block: record.spec.from_block,
                        id: record.id.clone(),
                        revision: record.revision,
                        start_block: record.start_block,
                        compiled,
                    };
                    next.insert(record.id, Arc::new(active));
                }
                // Stored triggers were validated on creation; failing now means the chain
                // config changed under them, or the trigger predates a stricter rule (such
                // as the template sandbox's). Skip it rather than stall the chain.
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
}
