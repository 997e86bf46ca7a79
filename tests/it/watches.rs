//! Watches end to end against anvil: a mock lending pool with per-user health factors, our own
//! Multicall3-compatible aggregator, three subscribed wallets, the evaluator inside `herald
//! serve`, and the official SDK 6.0.0 reading the alert. Plus the API's validation, pause,
//! resume and delete.
//!
//! Waits poll the observable state (the watch's `evaluated_block`) with generous deadlines; no
//! sleep stands in for an assertion.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::chain_harness::{Chain, CHAIN_ID};
use crate::helpers::{addresses, TestApp};
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        Aggregator,
        "testdata/chain/watch/Aggregator.json"
    );
    alloy::sol!(
        #[sol(rpc)]
        LendingPool,
        "testdata/chain/watch/LendingPool.json"
    );
}
use bindings::{Aggregator, LendingPool};

const FUNCTION: &str = "getUserAccountData(address user) returns (uint256 totalCollateralBase, uint256, uint256, uint256, uint256, uint256 healthFactor)";
const TEMPLATE: &str = "Health factor {{ outputs.healthFactor | units(18) }} for {{ subscriber | short }} at block {{ block.number }}";
const DEADLINE: Duration = Duration::from_secs(90);

/// anvil with the aggregator and the lending pool deployed.
struct Lending {
    chain: Chain,
    aggregator: Address,
    pool: Address,
}

impl Lending {
    async fn start() -> Self {
        let chain = Chain::start().await;
        let aggregator = Aggregator::deploy_builder(chain.provider.clone())
            .from(chain.from)
            .deploy()
            .await
            .expect("deploy Aggregator");
        let pool = LendingPool::deploy_builder(chain.provider.clone())
            .from(chain.from)
            .deploy()
            .await
            .expect("deploy LendingPool");
        Self {
            chain,
            aggregator,
            pool,
        }
    }

    fn config(&self) -> herald::chain::ChainConfig {
        let mut config = self.chain.config();
        config.multicall_address = self.aggregator.to_string();
        config
    }

    /// Sets `user`'s health factor to `hf` (in hundredths) in its own block; returns the block.
    async fn set(&self, user: &str, hundredths: u64) -> u64 {
        let pool = LendingPool::new(self.pool, self.chain.provider.clone());
        let hf = U256::from(hundredths) * U256::from(10u64).pow(U256::from(16));
        let receipt = self
            .chain
            .transact(pool.setHealthFactor(user.parse().unwrap(), hf))
            .await;
        receipt.block_number.unwrap()
    }

    fn watch(&self) -> Value {
        json!({
            "chain_id": CHAIN_ID,
            "contract": self.pool.to_string(),
            "function": FUNCTION,
            "args": [{"arg": "user", "from": "subscriber"}],
            "condition": {"arg": "healthFactor", "op": "<", "value": "1100000000000000000"},
            "rearm": {"arg": "healthFactor", "op": ">", "value": "1300000000000000000"},
            "template": TEMPLATE,
        })
    }
}

async fn patch(app: &TestApp, path: &str, key: &str, body: Value) -> crate::helpers::Reply {
    app.call(Method::PATCH, path, Some(key), Some(body)).await
}

/// Waits until the watch at `path` was evaluated at `block` or later; returns the watch.
async fn evaluated(app: &TestApp, key: &str, path: &str, block: u64) -> Value {
    let started = tokio::time::Instant::now();
    loop {
        let w = app.get(path, key).await;
        assert_eq!(w.status, StatusCode::OK, "{}", w.body);
        if w.body["evaluated_block"]
            .as_u64()
            .is_some_and(|b| b >= block)
        {
            return w.body;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "watch never evaluated at block {block}: {}",
            w.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (announcement id, text, recipient addresses) of the channel's announcements, oldest first.
async fn alerts(app: &TestApp, channel: &str) -> Vec<(String, String, Vec<String>)> {
    let ids = app
        .raw_strings(&format!(
            "SELECT id FROM announcements WHERE channel_id = '{channel}' ORDER BY id"
        ))
        .await;
    let mut out = Vec::new();
    for id in ids {
        let text = app
            .raw_strings(&format!("SELECT text FROM announcements WHERE id = '{id}'"))
            .await
            .remove(0);
        let to = app
            .raw_strings(&format!(
                "SELECT address FROM deliveries WHERE announcement_id = '{id}' ORDER BY address"
            ))
            .await;
        out.push((id, text, to));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_alerts_only_that_wallet_once_and_again_after_rearm() {
    let lending = Lending::start().await;
    let config = lending.config();
    let app = TestApp::spawn_with(move |c| {
        c.chains = vec![config];
        c.xmtp.workers = 2;
    })
    .await;
    let key = app.tenant("lender").await;
    let ch = app.channel(&key, "positions").await;
    let sender = app.get(&format!("/v1/channels/{ch}"), &key).await.body["xmtp"]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sdk = Sdk::start().await;
    let k: [u8; 32] = rand::random();
    let user = sdk
        .create("borrower", &format!("0x{}", hex::encode(k)), &app.xmtp_url)
        .await;
    let wallet = user.address.to_lowercase();
    let others = addresses(0x3c, 2);
    let mut wallets = others.clone();
    wallets.push(wallet.clone());
    for w in &wallets {
        lending.set(w, 200).await;
    }
    app.subscribe(&key, &ch, &wallets).await;

    let created = app
        .post(&format!("/v1/channels/{ch}/watches"), &key, lending.watch())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!(
        "/v1/channels/{ch}/watches/{}",
        created.body["id"].as_str().unwrap()
    );
    let start = lending.chain.head().await;
    evaluated(&app, &key, &path, start).await;
    assert!(
        alerts(&app, &ch).await.is_empty(),
        "healthy wallets alerted"
    );

    // The borrower falls below 1.1: one alert, to the borrower only.
    let b1 = lending.set(&wallet, 105).await;
    let w = evaluated(&app, &key, &path, b1).await;
    assert_eq!(w["alerted"], 1, "{w}");
    let got = alerts(&app, &ch).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let checksum = wallet.parse::<Address>().unwrap().to_checksum(None);
    let first = format!(
        "Health factor 1.05 for {}…{} at block {b1}",
        &checksum[..6],
        &checksum[checksum.len() - 4..]
    );
    assert_eq!(got[0].1, first);
    assert_eq!(got[0].2, vec![wallet.clone()], "only the borrower");

    // Still below for more blocks, and between the levels: no second alert.
    lending.chain.mine(3).await;
    let b2 = lending.set(&wallet, 120).await;
    evaluated(&app, &key, &path, b2).await;
    assert_eq!(
        alerts(&app, &ch).await.len(),
        1,
        "alerted twice while below"
    );

    // Above the re-arm level, then below again: a second alert.
    let b3 = lending.set(&wallet, 150).await;
    let w = evaluated(&app, &key, &path, b3).await;
    assert_eq!(w["alerted"], 0, "re-armed: {w}");
    let b4 = lending.set(&wallet, 100).await;
    evaluated(&app, &key, &path, b4).await;
    let got = alerts(&app, &ch).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let second = first
        .replace("1.05", "1")
        .replace(&format!("block {b1}"), &format!("block {b4}"));
    assert_eq!(got[1].1, second);
    assert_eq!(got[1].2, vec![wallet.clone()]);

    for (id, _, _) in &got {
        let done = wait_completed(&app, &key, id).await;
        assert_eq!(done["counts"]["delivered"], 1, "{done}");
    }
    let texts = sdk
        .dm_texts(&user.name, &sender)
        .await
        .expect("the SDK has a DM from the channel");
    assert_eq!(texts, vec![first, second], "the SDK reads both alerts");
    sdk.shutdown().await;

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "herald_watch_evaluations_total",
        "herald_watch_alerts_total",
        "herald_watch_lag_blocks",
        "herald_watch_evaluated_block",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn watches_are_validated_paused_resumed_and_deleted() {
    let lending = Lending::start().await;
    let config = lending.config();
    let app = TestApp::spawn_with(move |c| c.chains = vec![config]).await;
    let key = app.tenant("lender").await;
    let ch = app.channel(&key, "positions").await;
    let base = format!("/v1/channels/{ch}/watches");

    let mut bad = lending.watch();
    bad["args"] = json!([{"arg": "owner", "from": "subscriber"}]);
    bad["condition"] = json!({"arg": "hf", "op": "<", "value": 1});
    bad["every_blocks"] = json!(0);
    bad["topic"] = json!("liquidations");
    let r = app.post(&base, &key, bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "invalid_watch");
    let fields: Vec<(&str, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("args[0].arg", "unknown_argument"),
            ("args", "unbound_argument"),
            ("condition.arg", "unknown_argument"),
            ("every_blocks", "invalid_every_blocks"),
        ]
    );
    let mut unknown_topic = lending.watch();
    unknown_topic["topic"] = json!("liquidations");
    let r = app.post(&base, &key, unknown_topic).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["code"], "unknown_topic", "{}", r.body);
    let mut extra = lending.watch();
    extra["colour"] = json!("red");
    let r = app.post(&base, &key, extra).await;
    assert_eq!(r.code(), "invalid_body", "{}", r.body);

    let created = app.post(&base, &key, lending.watch()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!("{base}/{}", created.body["id"].as_str().unwrap());
    assert_eq!(created.body["every_blocks"], 1);
    assert_eq!(created.body["paused"], false);

    let other = app.tenant("other").await;
    assert_eq!(app.get(&path, &other).await.status, StatusCode::NOT_FOUND);
    let listed = app.get(&base, &key).await.body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    let paused = patch(&app, &path, &key, json!({"paused": true})).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert_eq!(paused.body["paused"], true);
    assert_eq!(paused.body["revision"], 1, "pausing is no edit");
    let edited = patch(
        &app,
        &path,
        &key,
        json!({"paused": false, "rearm": null, "cooldown_blocks": 10}),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["paused"], false);
    assert_eq!(edited.body["revision"], 2);
    assert_eq!(edited.body["rearm"], Value::Null);
    assert_eq!(edited.body["cooldown_blocks"], 10);
    let refused = patch(&app, &path, &key, json!({"template": "{{ args.x }}"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["errors"][0]["code"], "template_render_failed");

    assert_eq!(
        app.call(Method::DELETE, &path, Some(&key), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, &key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_restart_keeps_an_alerted_wallet_disarmed() {
    let lending = Lending::start().await;
    let config = lending.config();
    let mut app = TestApp::spawn_with(move |c| c.chains = vec![config]).await;
    let key = app.tenant("lender").await;
    let ch = app.channel(&key, "positions").await;
    let wallets = addresses(0x4e, 3);
    for w in &wallets {
        lending.set(w, 200).await;
    }
    app.subscribe(&key, &ch, &wallets).await;
    let mut watch = lending.watch();
    watch["rearm"] = Value::Null;
    watch["cooldown_blocks"] = json!(2);
    let created = app
        .post(&format!("/v1/channels/{ch}/watches"), &key, watch)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!(
        "/v1/channels/{ch}/watches/{}",
        created.body["id"].as_str().unwrap()
    );
    let b1 = lending.set(&wallets[1], 90).await;
    evaluated(&app, &key, &path, b1).await;
    assert_eq!(alerts(&app, &ch).await.len(), 1);

    // herald restarts (the chain lease is released on shutdown and taken again): the state in
    // the database keeps the wallet disarmed while it stays below.
    app.restart().await;
    lending.chain.mine(4).await;
    let head = lending.chain.head().await;
    let w = evaluated(&app, &key, &path, head).await;
    assert_eq!(w["alerted"], 1, "{w}");
    assert_eq!(
        alerts(&app, &ch).await.len(),
        1,
        "alerted again after restart"
    );

    // Without `rearm`, the wallet re-arms once the condition is false; below again alerts.
    let b2 = lending.set(&wallets[1], 150).await;
    evaluated(&app, &key, &path, b2).await;
    let b3 = lending.set(&wallets[1], 95).await;
    evaluated(&app, &key, &path, b3).await;
    let got = alerts(&app, &ch).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(_, _, to)| to == &vec![wallets[1].clone()]));
}
