//! Reorg retraction: a trigger with `confirmations = 1` (the lowest herald accepts) announces
//! a log as soon as one block is on top of it; when anvil reorgs that log out, the deliveries
//! not yet sent are dropped, and herald sends whoever got it a retraction, an XMTP reply
//! (`xmtp.org/reply:1.0`) to their copy of the original, and the API links the two. The
//! official SDK reads the original and then the reply referencing it (decoded again with
//! `@xmtp/content-type-reply`).

use std::sync::Arc;

use herald::chain::store::ChainStore;
use herald::domain::{ChannelId, TenantId, TriggerId};
use herald::store::NewTrigger;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::chain_harness::*;
use crate::helpers::{addresses, TestApp, ADMIN_TOKEN};
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

struct Setup {
    chain: Chain,
    app: TestApp,
    key: String,
    channel: String,
    store: Arc<dyn ChainStore>,
}

/// anvil with the test contract, an app (with `workers` delivery workers) and a channel with
/// an immediate (`confirmations = 1`) swap trigger; the test drives the watcher itself.
async fn setup(workers: usize) -> Setup {
    let chain = Chain::start().await;
    let app = TestApp::spawn_with(|c| c.xmtp.workers = workers).await;
    let tenant = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({"name": "dex"}))
        .await;
    assert_eq!(tenant.status, StatusCode::CREATED);
    let key = tenant.body["api_key"].as_str().unwrap().to_owned();
    let tenant = TenantId::parse(tenant.body["id"].as_str().unwrap()).unwrap();
    let channel = app.channel(&key, "swaps").await;
    let spec = swap_trigger(chain.contract, None, 1);
    spec.validate(&[chain.config()]).unwrap();
    let new = NewTrigger {
        id: TriggerId::generate(),
        tenant,
        channel: ChannelId::parse(&channel).unwrap(),
        spec,
    };
    app.store
        .triggers()
        .create_trigger(&new)
        .await
        .unwrap()
        .unwrap();
    let store = app.store.triggers().chain_store(None);
    Setup {
        chain,
        app,
        key,
        channel,
        store,
    }
}

/// The channel's announcements, oldest first.
async fn announcements(s: &Setup) -> Vec<Value> {
    let list = s
        .app
        .get(&format!("/v1/channels/{}/announcements", s.channel), &s.key)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let mut items = list.body["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

async fn announcement(s: &Setup, id: &str) -> Value {
    s.app
        .get(&format!("/v1/announcements/{id}"), &s.key)
        .await
        .body
}

async fn addresses_of(s: &Setup, id: &str) -> Vec<String> {
    let body = s
        .app
        .get(&format!("/v1/announcements/{id}/deliveries"), &s.key)
        .await
        .body;
    let mut out: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["address"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_log_reorged_out_before_its_announcement_was_sent_is_not_sent_at_all() {
    // No delivery worker: the original is still queued when the reorg comes.
    let s = setup(0).await;
    let audience = addresses(0x51, 2);
    s.app.subscribe(&s.key, &s.channel, &audience).await;
    let mut w = watcher(s.chain.config(), s.store.clone());
    run_until_idle(&mut w).await;

    s.chain.swap(1_000, -1_000).await;
    s.chain.mine(1).await;
    run_until_idle(&mut w).await;
    let before = announcements(&s).await;
    assert_eq!(before.len(), 1, "announced at once: {before:?}");
    let original = before[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(before[0]["retracts"], Value::Null);
    assert_eq!(announcement(&s, &original).await["counts"]["pending"], 2);

    // The swap's block and the one on top are replaced by empty ones: the log is gone.
    s.chain.reorg(2, Vec::new()).await;
    let outcomes = run_until_idle(&mut w).await;
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, herald::chain::Outcome::Reorg { .. })),
        "{outcomes:?}"
    );
    // Nobody got the stale event, so nobody gets a retraction either.
    let after = announcements(&s).await;
    assert_eq!(after.len(), 1, "no retraction: {after:?}");
    let shown = announcement(&s, &original).await;
    assert_eq!(shown["retracted_by"], Value::Null, "{shown}");
    assert_eq!(shown["status"], "completed", "{shown}");
    assert_eq!(shown["counts"]["pending"], 0, "{shown}");
    assert_eq!(shown["counts"]["skipped"], 2, "{shown}");
    let deliveries = s
        .app
        .get(&format!("/v1/announcements/{original}/deliveries"), &s.key)
        .await
        .body;
    for d in deliveries["items"].as_array().unwrap() {
        assert_eq!(d["status"], "skipped", "{d}");
        assert_eq!(d["reason"], "retracted", "{d}");
    }
    assert_eq!(addresses_of(&s, &original).await.len(), 2);

    // More blocks, another step: nothing is retracted or announced again.
    s.chain.mine(3).await;
    run_until_idle(&mut w).await;
    assert_eq!(announcements(&s).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reads_the_original_then_the_reply_that_retracts_it() {
    let s = setup(1).await;
    let sender = s
        .app
        .get(&format!("/v1/channels/{}", s.channel), &s.key)
        .await
        .body["xmtp"]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sdk = Sdk::start().await;
    let k: [u8; 32] = rand::random();
    let user = sdk
        .create("holder", &format!("0x{}", hex::encode(k)), &s.app.xmtp_url)
        .await;
    s.app
        .subscribe(&s.key, &s.channel, &[user.address.to_lowercase()])
        .await;
    let mut w = watcher(s.chain.config(), s.store.clone());
    run_until_idle(&mut w).await;

    s.chain.swap(5_000, -5_000).await;
    s.chain.mine(1).await;
    run_until_idle(&mut w).await;
    let original = announcements(&s).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = wait_completed(&s.app, &s.key, &original).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");

    s.chain.reorg(2, Vec::new()).await;
    run_until_idle(&mut w).await;
    let retraction = announcement(&s, &original).await["retracted_by"]
        .as_str()
        .expect("retracted")
        .to_owned();
    let done = wait_completed(&s.app, &s.key, &retraction).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    assert_eq!(done["counts"]["total"], 1, "{done}");
    assert_eq!(done["retracts"], original.as_str(), "{done}");
    assert_eq!(done["priority"], "critical", "{done}");
    assert_eq!(
        addresses_of(&s, &retraction).await,
        addresses_of(&s, &original).await,
        "the retraction goes to whoever got the original"
    );
    assert_eq!(announcements(&s).await.len(), 2, "one retraction");
    let retraction_text = done["text"].as_str().unwrap().to_owned();
    assert!(
        retraction_text.starts_with("Retracted:") && retraction_text.contains("(block "),
        "{retraction_text}"
    );

    let dm = sdk
        .find_dm_of(&user.name, &sender)
        .await
        .expect("the SDK sees herald's DM");
    let got = sdk
        .call("contents", json!({"name": user.name, "conversationId": dm}))
        .await;
    let all = got.as_array().unwrap();
    let first = all
        .iter()
        .position(|m| m["rawType"] == "xmtp.org/text")
        .unwrap_or_else(|| panic!("no original: {got}"));
    let reply_at = all
        .iter()
        .position(|m| m["rawType"] == "xmtp.org/reply")
        .unwrap_or_else(|| panic!("no reply: {got}"));
    assert!(first < reply_at, "the original, then the retraction: {got}");
    let original_id = all[first]["id"].as_str().unwrap();
    let reply = &all[reply_at];
    // The official codec, on the raw EncodedContent.
    assert_eq!(reply["official"]["reference"], original_id, "{reply}");
    assert_eq!(
        reply["official"]["content"],
        retraction_text.as_str(),
        "{reply}"
    );
    assert_eq!(reply["rawFallback"], retraction_text.as_str(), "{reply}");
    // The SDK's own decoding names the same message.
    assert!(
        reply["sdkContent"].to_string().contains(original_id),
        "{reply}"
    );
    sdk.shutdown().await;
}
