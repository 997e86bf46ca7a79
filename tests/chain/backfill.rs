//! Triggers that start behind the chain cursor: new triggers added while the watcher runs,
//! opt-in history through `from_block`, and the `max_backfill_blocks` cap.

use crate::harness::*;
use herald::chain::store::{MemoryChainStore, TriggerRecord};
use herald::chain::Outcome;
use std::sync::Arc;

fn record(id: &str, spec: herald::chain::TriggerSpec, start_block: u64) -> TriggerRecord {
    TriggerRecord {
        id: id.into(),
        revision: 1,
        spec,
        start_block,
        scanned_to: None,
    }
}

#[tokio::test]
async fn trigger_with_old_from_block_catches_up_then_follows_live() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    // The watcher follows the chain with no triggers: its cursor moves past the history.
    let mut w = watcher(config.clone(), store.clone());
    w.run_once().await.unwrap();
    let (_, first) = chain.swap(1, -1).await;
    let (_, second) = chain.swap(2, -2).await;
    chain.mine(3).await;
    run_until_idle(&mut w).await;
    assert!(store.cursor(CHAIN_ID).unwrap().number > second);

    // A trigger asking for history from the first swap's block, and one that does not.
    let cursor = store.cursor(CHAIN_ID).map(|c| c.number);
    let mut spec = swap_trigger(chain.contract, None, 1);
    spec.from_block = Some(first);
    spec.validate(std::slice::from_ref(&config)).unwrap();
    store.put_trigger(CHAIN_ID, TriggerRecord::new("history", spec, cursor));
    let live_only = swap_trigger(chain.contract, None, 1);
    store.put_trigger(CHAIN_ID, TriggerRecord::new("live", live_only, cursor));
    let outcomes = run_until_idle(&mut w).await;
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::CaughtUp { .. })),
        "{outcomes:?}"
    );
    let blocks: Vec<u64> = store.announced().iter().map(|a| a.block_number).collect();
    assert_eq!(blocks, vec![first, second]);

    // Then it is part of the shared live scan.
    let (_, third) = chain.swap(3, -3).await;
    chain.mine(1).await;
    run_until_idle(&mut w).await;
    let mut got: Vec<(String, u64)> = store
        .announced()
        .into_iter()
        .map(|a| (a.key.trigger_id, a.block_number))
        .collect();
    got.sort();
    let want = vec![
        ("history".to_owned(), first),
        ("history".to_owned(), second),
        ("history".to_owned(), third),
        ("live".to_owned(), third),
    ];
    assert_eq!(got, want);

    // A restart does not replay the caught-up history.
    let mut restarted = watcher(config, store.clone());
    chain.mine(2).await;
    run_until_idle(&mut restarted).await;
    assert_eq!(store.announced().len(), 4);
}

#[tokio::test]
async fn history_beyond_max_backfill_blocks_is_skipped() {
    let chain = Chain::start().await;
    let mut config = chain.config();
    config.max_backfill_blocks = 5;
    let store = Arc::new(MemoryChainStore::new());
    let mut w = watcher(config.clone(), store.clone());
    w.run_once().await.unwrap();
    let (_, old) = chain.swap(1, -1).await;
    chain.mine(10).await;
    let (_, recent) = chain.swap(2, -2).await;
    chain.mine(2).await;
    run_until_idle(&mut w).await;

    let spec = swap_trigger(chain.contract, None, 1);
    store.put_trigger(CHAIN_ID, record("capped", spec, old));
    run_until_idle(&mut w).await;
    let blocks: Vec<u64> = store.announced().iter().map(|a| a.block_number).collect();
    assert_eq!(
        blocks,
        vec![recent],
        "only the last 5 blocks below the cursor are scanned"
    );
}
