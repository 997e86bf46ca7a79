//! Happy path: confirmations, conditions, signed integers.

use crate::harness::*;
use herald::chain::store::MemoryChainStore;
use herald::chain::Outcome;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn swap_is_announced_once_after_confirmations() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "t-swap",
        swap_trigger(chain.contract, None, 3),
        &config,
    );
    let mut w = watcher(config, store.clone());
    assert!(matches!(
        w.run_once().await.unwrap(),
        Outcome::Started { .. }
    ));

    let (_, block) = chain.swap(1_500_000_000_000_000_000, -2_500_000_000).await;
    // 0, 1 and 2 confirmations on top of the swap's block: nothing yet.
    for _ in 0..3 {
        run_until_idle(&mut w).await;
        assert!(
            store.announced().is_empty(),
            "announced before 3 confirmations at head {}",
            chain.head().await
        );
        chain.mine(1).await;
    }
    run_until_idle(&mut w).await;
    assert_eq!(
        texts(&store.announced()),
        vec![format!("Swap 1.5 / -2500000000 at block {block} on anvil")]
    );

    // More blocks and more steps never repeat it.
    chain.mine(5).await;
    run_until_idle(&mut w).await;
    assert_eq!(store.announced().len(), 1);
}

#[tokio::test]
async fn conditions_filter_small_swaps_and_compare_negative_ints() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    let big = json!({"arg": "amount0", "op": ">=", "value": "1000000000000000000"});
    let very_negative = json!({"all": [{"arg": "amount1", "op": "<", "value": -1000}, {"arg": "sender", "op": "==", "value": "0x1111111111111111111111111111111111111111"}]});
    add_trigger(
        &store,
        "big",
        swap_trigger(chain.contract, Some(big), 1),
        &config,
    );
    add_trigger(
        &store,
        "neg",
        swap_trigger(chain.contract, Some(very_negative), 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();

    let (_, b1) = chain.swap(2_000_000_000_000_000_000, -2_500).await; // both
    let (_, _b2) = chain.swap(100_000_000_000_000_000, -5).await; // neither: small and only slightly negative
    let (_, b3) = chain.swap(5, -5_000).await; // only "neg"
    let (_, _b4) = chain.swap(7, 999).await; // neither: positive amount1
    chain.mine(1).await;
    run_until_idle(&mut w).await;

    let mut got: Vec<(String, String)> = store
        .announced()
        .into_iter()
        .map(|a| (a.key.trigger_id, a.text))
        .collect();
    got.sort();
    let mut want = vec![
        (
            "big".to_owned(),
            format!("Swap 2 / -2500 at block {b1} on anvil"),
        ),
        (
            "neg".to_owned(),
            format!("Swap 2 / -2500 at block {b1} on anvil"),
        ),
        (
            "neg".to_owned(),
            format!("Swap 0.000000000000000005 / -5000 at block {b3} on anvil"),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn logs_before_a_triggers_start_block_are_ignored() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    let (_, old) = chain.swap(1, -1).await;
    let spec = swap_trigger(chain.contract, None, 1);
    store.put_trigger(
        CHAIN_ID,
        herald::chain::store::TriggerRecord {
            id: "late".into(),
            revision: 1,
            spec,
            start_block: old + 1,
            scanned_to: None,
        },
    );
    let mut w = watcher(config, store.clone());
    // Start the cursor below the old swap so the range covers it.
    w.run_once().await.unwrap();
    let (_, new) = chain.swap(2, -2).await;
    chain.mine(1).await;
    run_until_idle(&mut w).await;
    let blocks: Vec<u64> = store.announced().iter().map(|a| a.block_number).collect();
    assert_eq!(blocks, vec![new]);
}
