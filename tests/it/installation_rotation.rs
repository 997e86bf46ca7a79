//! Rotating a channel's XMTP installation: the official SDK subscriber reads messages sent
//! before and after in one DM, and the inbox no longer lists the old installation.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

use std::sync::Arc;

use herald::domain::ChannelId;
use herald::xmtp::channel::channel_wallet;
use xmtp_client::{Client, GrpcTransport, MemoryStore};

use crate::helpers::TestApp;
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

async fn announce(app: &TestApp, key: &str, channel: &str, text: &str) {
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            key,
            json!({ "text": text }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let done = wait_completed(app, key, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
}

/// Rotates, retrying while a delivery worker still holds the channel (it releases the lease
/// just after marking the delivery done).
async fn rotate(app: &TestApp, key: &str, channel: &str) -> Value {
    for _ in 0..100 {
        let r = app
            .post(
                &format!("/v1/channels/{channel}/rotate-installation"),
                key,
                json!({}),
            )
            .await;
        if r.status == StatusCode::CONFLICT && r.body["code"] == "channel_busy" {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        return r.body;
    }
    panic!("the channel stayed busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_installation_keeps_the_dm_and_the_old_one_is_revoked() {
    // Chat commands are answered from the streams (the fallback poll is far beyond the test).
    let app = TestApp::spawn_with(|c| {
        c.xmtp.workers = 1;
        c.xmtp.inbound_poll_secs = 3600;
    })
    .await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "alerts").await;
    let inbox = app.inbox_of(&key, &channel).await;
    let ch = app.get(&format!("/v1/channels/{channel}"), &key).await.body;
    let old = ch["xmtp"]["installation_id"].as_str().unwrap().to_owned();

    let mut sdk = Sdk::start().await;
    let alice = sdk.user("alice", &app.xmtp_url).await;
    app.subscribe(&key, &channel, std::slice::from_ref(&alice.address))
        .await;
    announce(&app, &key, &channel, "before").await;
    let dm = sdk.find_dm(&alice, &inbox).await.expect("DM listed");
    assert_eq!(sdk.texts(&alice, &dm).await, ["before"]);

    // While a worker holds the channel's sender lease, nothing rotates.
    let id = ChannelId::parse(&channel).unwrap();
    let mut held = None;
    for _ in 0..100 {
        let now = chrono::Utc::now();
        held = app
            .store
            .pipeline()
            .acquire_sender(&id, "test-worker", now + chrono::Duration::seconds(60), now)
            .await
            .unwrap();
        if held.is_some() {
            break;
        }
        // The delivery worker releases the lease just after settling.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = held.expect("the delivery worker released the lease");
    let r = app
        .post(
            &format!("/v1/channels/{channel}/rotate-installation"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["code"], "channel_busy", "{}", r.body);
    app.store
        .pipeline()
        .release_sender(&held, None, None)
        .await
        .unwrap();
    let ch = app.get(&format!("/v1/channels/{channel}"), &key).await.body;
    assert_eq!(ch["xmtp"]["installation_id"], json!(old), "unchanged: {ch}");

    let out = rotate(&app, &key, &channel).await;
    assert_eq!(out["status"], "rotated", "{out}");
    assert_eq!(out["inbox_id"], json!(inbox), "{out}");
    assert_eq!(out["previous_installation_id"], json!(old), "{out}");
    assert_eq!(out["revoked_installation_ids"], json!([old]), "{out}");
    assert_eq!(out["dms"], 1, "{out}");
    let new = out["installation_id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let ch = app.get(&format!("/v1/channels/{channel}"), &key).await.body;
    assert_eq!(ch["xmtp"]["installation_id"], json!(new), "{ch}");
    assert_eq!(ch["xmtp"]["inbox_id"], json!(inbox), "{ch}");

    // The SDK sees the inbox with the new installation only.
    let state = sdk
        .call("inboxState", json!({"name": alice.name, "inboxId": inbox}))
        .await;
    assert_eq!(state["installations"], json!([new]), "{state}");

    // The next announcement arrives in the same conversation, after the first one.
    announce(&app, &key, &channel, "after").await;
    assert_eq!(sdk.texts(&alice, &dm).await, ["before", "after"]);
    assert_eq!(
        sdk.find_dm(&alice, &inbox).await.as_deref(),
        Some(dm.as_str()),
        "still one DM with the channel"
    );
    let convs = sdk.call("list", json!({"name": alice.name})).await;
    assert_eq!(convs.as_array().unwrap().len(), 1, "{convs}");

    // The new installation reads the DM too: a chat command is answered in it.
    sdk.say(&alice, &dm, "help").await;
    let mut texts = Vec::new();
    for _ in 0..200 {
        texts = sdk.texts(&alice, &dm).await;
        if texts.iter().any(|t| t.contains("STOP")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        texts.iter().any(|t| t.contains("STOP")),
        "no answer to help: {texts:?}"
    );

    // A second rotation works from the rotated state too, and also revokes an installation
    // an interrupted rotation would leave behind (registered, its key lost).
    let (_, wallet) = channel_wallet(&app.store, &Arc::new(app.kek.clone()), &id)
        .await
        .unwrap();
    let transport = Arc::new(GrpcTransport::connect_lazy(&app.xmtp_url).unwrap());
    let stray = Client::open(&wallet, transport, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let stray = hex::encode(stray.installation_id());
    let again = rotate(&app, &key, &channel).await;
    let mut revoked: Vec<String> =
        serde_json::from_value(again["revoked_installation_ids"].clone()).unwrap();
    revoked.sort();
    let mut expected = vec![new.clone(), stray];
    expected.sort();
    assert_eq!(revoked, expected, "{again}");
    let newest = again["installation_id"].as_str().unwrap();
    let state = sdk
        .call("inboxState", json!({"name": alice.name, "inboxId": inbox}))
        .await;
    assert_eq!(state["installations"], json!([newest]), "{state}");
    announce(&app, &key, &channel, "again").await;
    let texts = sdk.texts(&alice, &dm).await;
    assert_eq!(texts.first().map(String::as_str), Some("before"));
    assert_eq!(texts.last().map(String::as_str), Some("again"), "{texts:?}");

    // Another tenant's key cannot rotate the channel.
    let other = app.tenant("other").await;
    let r = app
        .post(
            &format!("/v1/channels/{channel}/rotate-installation"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    sdk.shutdown().await;
}
