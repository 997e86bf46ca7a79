//! Crash/restart: the cursor and the event keys give no gap and no duplicate.

use crate::harness::*;
use async_trait::async_trait;
use herald::chain::store::{
    ChainBatch, ChainState, ChainStore, ChainStoreError, CommitSummary, MemoryChainStore,
    TriggerRecord,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Delegates to a memory store but can fail the next commit, like a crash before COMMIT.
struct FlakyStore {
    inner: Arc<MemoryChainStore>,
    fail_next_commit: AtomicBool,
}

#[async_trait]
impl ChainStore for FlakyStore {
    async fn load_state(&self, chain_id: u64) -> Result<ChainState, ChainStoreError> {
        self.inner.load_state(chain_id).await
    }
    async fn active_triggers(&self, chain_id: u64) -> Result<Vec<TriggerRecord>, ChainStoreError> {
        self.inner.active_triggers(chain_id).await
    }
    async fn commit_batch(&self, batch: ChainBatch) -> Result<CommitSummary, ChainStoreError> {
        if self.fail_next_commit.swap(false, Ordering::SeqCst) {
            return Err(ChainStoreError::Unavailable(
                "simulated crash before commit".into(),
            ));
        }
        self.inner.commit_batch(batch).await
    }
}

#[tokio::test]
async fn watcher_stopped_mid_range_resumes_without_gap_or_duplicate() {
    let chain = Chain::start().await;
    let mut config = chain.config();
    config.max_block_range = 3;
    let memory = Arc::new(MemoryChainStore::new());
    add_trigger(
        &memory,
        "swap",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let flaky = Arc::new(FlakyStore {
        inner: memory.clone(),
        fail_next_commit: AtomicBool::new(false),
    });

    let mut w = watcher(config.clone(), flaky.clone());
    w.run_once().await.unwrap();
    for i in 1..=12 {
        chain.swap(i, -i).await;
    }
    // Five swaps in one transaction: distinct positions inside the tx, distinct keys.
    let (batch_tx, _) = chain.swap_batch(5).await;
    chain.mine(1).await;

    // Two ranges, then a crash while committing the third, then the process "dies".
    w.run_once().await.unwrap();
    w.run_once().await.unwrap();
    let committed_before_crash = memory.announced().len();
    flaky.fail_next_commit.store(true, Ordering::SeqCst);
    assert!(w.run_once().await.unwrap_err().is_retryable());
    drop(w);
    assert_eq!(memory.announced().len(), committed_before_crash);

    // A new watcher over the same store picks up at the stored cursor.
    let mut w = watcher(config, flaky.clone());
    run_until_idle(&mut w).await;

    let announced = memory.announced();
    assert_eq!(
        announced.len(),
        17,
        "12 single swaps + 5 batched: {:#?}",
        texts(&announced)
    );
    let keys: HashSet<_> = announced.iter().map(|a| a.key.clone()).collect();
    assert_eq!(keys.len(), 17, "duplicate announcement");
    let positions: HashSet<u32> = announced
        .iter()
        .filter(|a| a.key.tx_hash == batch_tx)
        .map(|a| a.key.log_position)
        .collect();
    assert_eq!(positions, (0..5).collect());
    let amounts: HashSet<String> = announced
        .iter()
        .map(|a| {
            a.text
                .split(" / ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for i in 1..=12 {
        assert!(amounts.contains(&format!("-{i}")), "swap {i} missing (gap)");
    }
}

#[tokio::test]
async fn a_second_watcher_replaying_the_same_range_is_absorbed_by_the_keys() {
    let chain = Chain::start().await;
    let config = chain.config();
    let memory = Arc::new(MemoryChainStore::new());
    add_trigger(
        &memory,
        "swap",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let mut first = watcher(config.clone(), memory.clone());
    first.run_once().await.unwrap();
    chain.swap(1, -1).await;
    chain.mine(1).await;
    // The second watcher loads the state before the first commits the range.
    let mut second = watcher(config, memory.clone());
    second.run_once().await.unwrap();
    run_until_idle(&mut first).await;
    run_until_idle(&mut second).await;
    assert_eq!(memory.announced().len(), 1);
}
