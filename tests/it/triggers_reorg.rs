//! The engine's reorg and restart guarantees on the SQL store, driven step by step against
//! anvil (no background watcher: the app has no `[[chains]]`, the test owns the `Watcher`).

use std::sync::Arc;

use herald::chain::store::ChainStore;
use herald::chain::{Outcome, TriggerSpec};
use herald::domain::{ChannelId, TenantId, TriggerId};
use herald::store::NewTrigger;
use reqwest::StatusCode;
use serde_json::json;

use crate::chain_harness::*;
use crate::helpers::{addresses, TestApp, ADMIN_TOKEN};

struct Setup {
    chain: Chain,
    app: TestApp,
    channel: String,
    store: Arc<dyn ChainStore>,
}

/// anvil with the test contract, an app without chains, a channel with two subscribers and
/// the triggers `specs` builds for the deployed contract.
async fn setup(specs: impl FnOnce(&Chain) -> Vec<TriggerSpec>) -> Setup {
    let chain = Chain::start().await;
    let app = TestApp::spawn().await;
    let tenant = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({"name": "dex"}))
        .await;
    assert_eq!(tenant.status, StatusCode::CREATED);
    let key = tenant.body["api_key"].as_str().unwrap();
    let tenant = TenantId::parse(tenant.body["id"].as_str().unwrap()).unwrap();
    let channel = app.channel(key, "swaps").await;
    app.subscribe(key, &channel, &addresses(5, 2)).await;
    let config = chain.config();
    for spec in specs(&chain) {
        spec.validate(std::slice::from_ref(&config)).unwrap();
        let new = NewTrigger {
            id: TriggerId::generate(),
            tenant: tenant.clone(),
            channel: ChannelId::parse(&channel).unwrap(),
            spec,
        };
        app.store
            .triggers()
            .create_trigger(&new)
            .await
            .unwrap()
            .unwrap();
    }
    let store = app.store.triggers().chain_store(None);
    Setup {
        chain,
        app,
        channel,
        store,
    }
}

async fn texts(s: &Setup) -> Vec<String> {
    s.app
        .raw_strings(&format!(
            "SELECT text FROM announcements WHERE channel_id = '{}' ORDER BY id",
            s.channel
        ))
        .await
}

#[tokio::test]
async fn a_reorg_below_the_confirmations_and_a_restart_announce_the_moved_swap_once() {
    // Swap needs 5 confirmations, Transfer 1: the cursor moves past the swap while the swap
    // waits as a pending event.
    let s = setup(|chain| {
        vec![
            swap_trigger(chain.contract, None, 5),
            transfer_trigger(chain.contract, 1),
        ]
    })
    .await;
    let chain = &s.chain;
    let config = chain.config();
    let mut w = watcher(config.clone(), s.store.clone());
    assert!(matches!(
        w.run_once().await.unwrap(),
        Outcome::Started { .. }
    ));

    let (tx, block) = chain.swap(1_000, -1_000).await;
    chain.mine(2).await;
    run_until_idle(&mut w).await;
    assert_eq!(s.store.load_state(CHAIN_ID).await.unwrap().pending.len(), 1);

    // The swap's block and the two after it are replaced; the tx lands one block later.
    let raw = chain.raw_tx(tx).await;
    chain.reorg(3, vec![(raw, 1)]).await;
    run_until_idle(&mut w).await;
    let pending = s.store.load_state(CHAIN_ID).await.unwrap().pending;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].block_number, block + 1);
    assert!(
        texts(&s).await.is_empty(),
        "nothing announced before 5 confirmations"
    );

    // Restart: a fresh watcher resumes from what the database holds.
    drop(w);
    let mut w = watcher(config.clone(), s.store.clone());
    chain.mine(10).await;
    run_until_idle(&mut w).await;
    let expected = vec![format!(
        "Swap 0.000000000000001 / -1000 at block {} on anvil",
        block + 1
    )];
    assert_eq!(texts(&s).await, expected);

    // Yet another restart and more blocks: still once.
    let mut w = watcher(config, s.store.clone());
    chain.mine(3).await;
    run_until_idle(&mut w).await;
    assert_eq!(texts(&s).await, expected);
}
