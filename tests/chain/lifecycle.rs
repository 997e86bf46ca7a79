//! The watcher loop, deep reorgs, and metrics.

use crate::harness::*;
use herald::chain::store::{MemoryChainStore, TriggerRecord};
use herald::chain::{Watcher, WatcherError};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn run_loop_announces_and_stops_on_cancel() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap",
        swap_trigger(chain.contract, None, 2),
        &config,
    );
    let cancel = CancellationToken::new();
    let task = tokio::spawn(watcher(config, store.clone()).run(cancel.clone()));
    // Let the loop set its starting cursor before the swap happens.
    wait_for(|| store.cursor(CHAIN_ID).is_some()).await;

    let (_, block) = chain.swap(3_000_000_000_000_000_000, -1).await;
    chain.mine(2).await;
    wait_for(|| !store.announced().is_empty()).await;
    assert_eq!(
        texts(&store.announced()),
        vec![format!("Swap 3 / -1 at block {block} on anvil")]
    );

    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop stops on cancel");
    assert!(result.unwrap().is_ok());
}

#[tokio::test]
async fn reorg_deeper_than_the_window_stops_the_chain() {
    let chain = Chain::start().await;
    let mut config = chain.config();
    config.reorg_window = 3;
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();
    chain.mine(8).await;
    run_until_idle(&mut w).await;

    chain.reorg(8, Vec::new()).await;
    let err = w.run_once().await.unwrap_err();
    assert!(matches!(err, WatcherError::ReorgTooDeep { .. }), "{err}");
    assert!(!err.is_retryable() && err.is_fatal());
}

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("only this test installs a recorder");
        snapshotter
    })
}

/// All counters and gauges of chain `chain`. Snapshots reset values, so take one per check.
fn metrics_of(chain: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let key = key.key();
        if !key
            .labels()
            .any(|l| l.key() == "chain" && l.value() == chain)
        {
            continue;
        }
        let value = match value {
            DebugValue::Counter(c) => c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => continue,
        };
        *out.entry(key.name().to_owned()).or_insert(0.0) += value;
    }
    out
}

#[tokio::test]
async fn metrics_report_heads_lag_matches_and_rpc_errors() {
    snapshotter();
    // A chain id no other test uses keeps this test's series separate (the watcher labels
    // metrics with the configured id; anvil does not care).
    let id = 4242;
    let chain = Chain::start().await;
    let (proxy_url, _) = crate::proxy::start(&chain.anvil.url, 2, 1_000).await;
    let mut config = chain_config(vec![proxy_url]);
    config.chain_id = id;
    let store = Arc::new(MemoryChainStore::new());
    let mut spec = swap_trigger(chain.contract, None, 1);
    spec.chain_id = id;
    spec.validate(std::slice::from_ref(&config)).unwrap();
    store.put_trigger(
        id,
        TriggerRecord {
            id: "swap".into(),
            revision: 1,
            spec,
            start_block: 0,
            scanned_to: None,
        },
    );
    let mut w = Watcher::with_retry_policy(config, store.clone(), fast_retries()).unwrap();
    w.run_once().await.unwrap();
    chain.swap(5, -5).await;
    chain.swap(6, -6).await;
    chain.mine(1).await;
    run_until_idle(&mut w).await;

    let head = chain.head().await as f64;
    let m = metrics_of(&id.to_string());
    assert_eq!(m.get("herald_chain_head_block"), Some(&head), "{m:?}");
    assert_eq!(m.get("herald_chain_safe_head_block"), Some(&(head - 1.0)));
    assert_eq!(m.get("herald_chain_cursor_block"), Some(&(head - 1.0)));
    assert_eq!(m.get("herald_chain_cursor_lag_blocks"), Some(&0.0));
    assert_eq!(m.get("herald_chain_logs_matched_total"), Some(&2.0));
    assert_eq!(m.get("herald_chain_announced_total"), Some(&2.0));
    // Two injected 503s, summed over the error kinds.
    assert_eq!(m.get("herald_chain_rpc_errors_total"), Some(&2.0));
}

async fn wait_for(done: impl FnMut() -> bool) {
    assert!(
        wait_for_or(done, 200).await,
        "condition not reached within 5 s"
    );
}

/// Checks `done` up to `tries` times, 25 ms apart; returns whether it held.
async fn wait_for_or(mut done: impl FnMut() -> bool, tries: u32) -> bool {
    for _ in 0..tries {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    done()
}

#[tokio::test]
async fn websocket_new_heads_wake_the_watcher_before_the_poll_interval() {
    let chain = Chain::start().await;
    let mut config = chain.config();
    // Without the WebSocket the next poll would be 60 s away.
    config.poll_interval_ms = 60_000;
    config.ws_url = Some(chain.anvil.url.replace("http://", "ws://"));
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let cancel = CancellationToken::new();
    let task = tokio::spawn(watcher(config, store.clone()).run(cancel.clone()));
    wait_for(|| store.cursor(CHAIN_ID).is_some()).await;

    // A head that arrives before the subscription is up is missed, so heads keep coming until
    // one wakes the watcher; polling (60 s away) cannot be what finds the swap.
    let (_, block) = chain.swap(1, -1).await;
    let mut heads = 0;
    while store.announced().is_empty() {
        assert!(heads < 100, "no wake-up after {heads} new heads");
        chain.mine(1).await;
        heads += 1;
        wait_for_or(|| !store.announced().is_empty(), 4).await;
    }
    assert_eq!(store.announced()[0].block_number, block);
    cancel.cancel();
    task.await.unwrap().unwrap();
}
