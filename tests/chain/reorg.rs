//! Reorgs simulated with `anvil_reorg`: dropped events, re-included transactions.

use crate::harness::*;
use herald::chain::store::{EventStatus, MemoryChainStore};
use herald::chain::Outcome;
use std::sync::Arc;

/// A Swap trigger needing 5 confirmations next to a Transfer trigger needing 1: the cursor
/// advances past the swap while it still waits, so the swap sits as a pending event.
async fn setup() -> (Chain, Arc<MemoryChainStore>, herald::chain::Watcher) {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap5",
        swap_trigger(chain.contract, None, 5),
        &config,
    );
    add_trigger(
        &store,
        "transfer1",
        transfer_trigger(chain.contract, 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();
    (chain, store, w)
}

#[tokio::test]
async fn reorg_below_confirmation_depth_announces_nothing() {
    let (chain, store, mut w) = setup().await;
    let (_, block) = chain.swap(1_000, -1_000).await;
    chain.mine(2).await;
    run_until_idle(&mut w).await;
    let pending = store.pending(CHAIN_ID);
    assert_eq!(pending.len(), 1, "swap should wait for confirmations");
    assert_eq!(
        pending[0].status,
        EventStatus::Pending {
            ready_at: block + 5
        }
    );

    // Replace the swap's block and the two after it with empty blocks.
    chain.reorg(3, Vec::new()).await;
    let outcomes = run_until_idle(&mut w).await;
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Reorg { fork, .. } if *fork == block - 1)),
        "{outcomes:?}"
    );
    assert!(
        store.pending(CHAIN_ID).is_empty(),
        "orphaned swap must be dropped"
    );

    chain.mine(10).await;
    run_until_idle(&mut w).await;
    assert!(
        store.announced().is_empty(),
        "orphaned swap was announced: {:?}",
        store.announced()
    );
}

#[tokio::test]
async fn pending_tx_reincluded_at_another_height_is_announced_once_with_its_new_block() {
    let (chain, store, mut w) = setup().await;
    let (tx, block) = chain.swap(1_000, -1_000).await;
    chain.mine(2).await;
    run_until_idle(&mut w).await;
    assert_eq!(store.pending(CHAIN_ID).len(), 1);

    // Blocks block..block+2 are replaced; the same signed tx lands in the second new block.
    let raw = chain.raw_tx(tx).await;
    chain.reorg(3, vec![(raw, 1)]).await;
    run_until_idle(&mut w).await;
    let pending = store.pending(CHAIN_ID);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].block_number, block + 1);
    assert_eq!(pending[0].key.tx_hash, tx);

    chain.mine(10).await;
    run_until_idle(&mut w).await;
    let announced = store.announced();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0].block_number, block + 1);
    assert_eq!(
        announced[0].text,
        format!(
            "Swap 0.000000000000001 / -1000 at block {} on anvil",
            block + 1
        )
    );
}

#[tokio::test]
async fn announced_tx_moved_by_a_deeper_reorg_is_retracted_then_announced_at_its_new_block() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap1",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();
    let (tx, block) = chain.swap(42, -42).await;
    chain.mine(1).await;
    run_until_idle(&mut w).await;
    assert_eq!(store.announced().len(), 1);

    // A reorg deeper than the trigger's confirmations moves the tx one block later.
    let raw = chain.raw_tx(tx).await;
    chain.reorg(2, vec![(raw, 1)]).await;
    chain.mine(2).await;
    let outcomes = run_until_idle(&mut w).await;
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Reorg { .. })),
        "{outcomes:?}"
    );
    // The announcement of the removed log is retracted; the log in its new block is a new
    // event of the canonical chain, announced once.
    let retracted = store.retracted();
    assert_eq!(retracted.len(), 1, "{retracted:?}");
    assert_eq!(retracted[0].block_number, block);
    let announced = store.announced();
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert_eq!(announced[1].key, announced[0].key);
    assert_eq!(announced[1].block_number, block + 1);
    chain.mine(3).await;
    run_until_idle(&mut w).await;
    assert_eq!(store.announced().len(), 2, "not again");
}

#[tokio::test]
async fn chain_getting_shorter_rolls_back_and_drops_pending() {
    let (chain, store, mut w) = setup().await;
    chain.swap(7, -7).await;
    chain.mine(2).await;
    run_until_idle(&mut w).await;
    assert_eq!(store.pending(CHAIN_ID).len(), 1);
    let cursor = store.cursor(CHAIN_ID).unwrap().number;

    // anvil_rollback removes blocks without replacing them: the cursor block disappears. The
    // watcher waits while the node is behind its cursor, then sees the new blocks' hashes.
    let _: serde_json::Value =
        alloy::providers::Provider::raw_request(&chain.provider, "anvil_rollback".into(), (4u64,))
            .await
            .unwrap();
    assert!(chain.head().await < cursor);
    assert!(
        run_until_idle(&mut w).await.is_empty(),
        "nothing happens while the node is behind"
    );
    assert_eq!(store.pending(CHAIN_ID).len(), 1);
    chain.mine(6).await;
    let outcomes = run_until_idle(&mut w).await;
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Reorg { .. })),
        "{outcomes:?}"
    );
    assert!(store.pending(CHAIN_ID).is_empty());
    chain.mine(10).await;
    run_until_idle(&mut w).await;
    assert!(store.announced().is_empty());
}
