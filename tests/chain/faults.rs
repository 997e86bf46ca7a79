//! Provider failures: dead endpoints, 503s, range limits.

use crate::harness::*;
use crate::proxy;
use herald::chain::store::MemoryChainStore;
use herald::chain::Outcome;
use std::sync::atomic::Ordering;
use std::sync::Arc;

async fn dead_url() -> String {
    // Accepts connections and drops them at once: every request fails at the transport level.
    // Keeping the listener (rather than binding and closing it) stops a parallel test's anvil
    // from being handed the same port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    url
}

#[tokio::test]
async fn failover_retries_and_range_shrinking_still_announce_everything_once() {
    let chain = Chain::start().await;
    let (proxy_url, counters) = proxy::start(&chain.anvil.url, 3, 2).await;
    let mut config = chain_config(vec![dead_url().await, proxy_url]);
    config.max_block_range = 64;
    let store = Arc::new(MemoryChainStore::new());
    add_trigger(
        &store,
        "swap",
        swap_trigger(chain.contract, None, 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    // The first step fails over from the dead URL to the proxy, whose first answers are 503s.
    let started = loop {
        match w.run_once().await {
            Ok(o) => break o,
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    };
    assert!(matches!(started, Outcome::Started { .. }), "{started:?}");
    assert_eq!(counters.unavailable.load(Ordering::SeqCst), 3);

    let mut blocks = Vec::new();
    for i in 1..=10 {
        blocks.push(chain.swap(i, -i).await.1);
    }
    chain.mine(1).await;
    let outcomes = run_until_idle(&mut w).await;

    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::RangeShrunk { .. })),
        "{outcomes:?}"
    );
    assert!(counters.range_rejected.load(Ordering::SeqCst) >= 1);
    assert!(counters.widest_ok_span.load(Ordering::SeqCst) <= 2);
    let mut got: Vec<u64> = store.announced().iter().map(|a| a.block_number).collect();
    got.sort();
    assert_eq!(got, blocks, "every swap exactly once despite failures");
}

#[tokio::test]
async fn all_endpoints_down_is_a_retryable_error() {
    let config = chain_config(vec![dead_url().await, dead_url().await]);
    let store = Arc::new(MemoryChainStore::new());
    let mut w = watcher(config, store);
    let err = w.run_once().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("unavailable"), "{err}");
}

#[tokio::test]
async fn requests_per_second_spaces_out_rpc_calls() {
    let chain = Chain::start().await;
    let mut config = chain.config();
    config.requests_per_second = 20;
    let rpc = herald::chain::rpc::ChainRpc::new(&config, fast_retries()).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..11 {
        rpc.block_number().await.unwrap();
    }
    // 11 calls at 20/s need at least 10 intervals of 50 ms (a lower bound only: a slow
    // machine makes this pass more easily, never fail).
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn rpc_errors_never_carry_the_api_key_of_the_url() {
    let dead = dead_url().await;
    let config = chain_config(vec![format!("{dead}/v3/SECRETKEY123?apikey=SECRETKEY123")]);
    let mut w = watcher(config, Arc::new(MemoryChainStore::new()));
    let err = w.run_once().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("SECRETKEY123"), "{text}");
    assert!(
        text.contains("127.0.0.1"),
        "the host is still shown: {text}"
    );
}
