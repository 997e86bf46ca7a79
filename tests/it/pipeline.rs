//! The delivery pipeline end to end: announcements reach real XMTP inboxes (the official SDK
//! and herald's own client) through the app's embedded node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use xmtp_client::{Client, GrpcTransport, MemoryStore, Wallet};

use crate::helpers::*;
use crate::sdk::Sdk;

/// Generous: a loaded 2-core machine runs several suites at once.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(300);

/// A herald-client inbox: the wallet's own installation on the app's node.
pub async fn herald_inbox(url: &str) -> Client {
    let wallet = Wallet::generate();
    let transport = Arc::new(GrpcTransport::connect_lazy(url).unwrap());
    Client::open(&wallet, transport, Arc::new(MemoryStore::new()))
        .await
        .expect("inbox registers")
}

/// Texts a herald-client inbox received from `sender_inbox`.
pub async fn received(client: &Client, sender_inbox: &str) -> Vec<(String, String)> {
    client.sync_welcomes().await.unwrap();
    if client.dm_group_id(sender_inbox).await.is_none() {
        return Vec::new();
    }
    client
        .sync_dm(sender_inbox)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.text.unwrap_or_default(), m.idempotency_key))
        .collect()
}

/// Polls the announcement until no delivery is pending; returns its final body.
pub async fn wait_completed(app: &TestApp, key: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = app.get(&format!("/v1/announcements/{id}"), key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["status"] == "completed" {
            return r.body;
        }
        assert!(
            start.elapsed() < COMPLETION_TIMEOUT,
            "announcement never completed: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_subscribers_sdk_and_herald_inboxes_read_the_announcement_once() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 2).await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "alerts").await;
    let sender = app.inbox_of(&key, &channel).await;
    let ch = app.get(&format!("/v1/channels/{channel}"), &key).await.body;
    assert!(
        ch["xmtp"]["installation_id"]
            .as_str()
            .is_some_and(|i| i.len() == 64),
        "{ch}"
    );

    let mut sdk = Sdk::start().await;
    let mut sdk_addresses = Vec::new();
    for i in 0..3 {
        let k: [u8; 32] = rand::random();
        let created = sdk
            .create(
                &format!("sdk{i}"),
                &format!("0x{}", hex::encode(k)),
                &app.xmtp_url,
            )
            .await;
        sdk_addresses.push(created.address.to_lowercase());
    }
    let mut inboxes = Vec::new();
    for _ in 0..42 {
        inboxes.push(herald_inbox(&app.xmtp_url).await);
    }
    let offline = addresses(0xee, 5);
    let unsubscribed = herald_inbox(&app.xmtp_url).await;

    let mut all: Vec<String> = sdk_addresses.clone();
    all.extend(inboxes.iter().map(|c| c.address().to_owned()));
    all.extend(offline.iter().cloned());
    all.push(unsubscribed.address().to_owned());
    app.subscribe(&key, &channel, &all).await;
    let gone = app
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/v1/channels/{channel}/subscribers/{}",
                unsubscribed.address()
            ),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);

    let text = format!("Block 19000001: 5 ETH received ({})", ulid::Ulid::new());
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            json!({ "text": text }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let done = wait_completed(&app, &key, &id).await;
    assert_eq!(
        done["counts"],
        json!({"total": 50, "pending": 0, "delivered": 45, "failed": 0, "skipped": 5}),
        "{done}"
    );
    let skipped = app
        .get(
            &format!("/v1/announcements/{id}/deliveries?status=skipped"),
            &key,
        )
        .await
        .body;
    let items = skipped["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{skipped}");
    for item in items {
        assert_eq!(item["reason"], "not_on_xmtp", "{item}");
        assert!(offline.contains(&item["address"].as_str().unwrap().to_lowercase()));
    }

    for (i, _) in sdk_addresses.iter().enumerate() {
        let texts = sdk
            .dm_texts(&format!("sdk{i}"), &sender)
            .await
            .expect("SDK sees the DM");
        assert_eq!(texts, vec![text.clone()], "SDK client {i}");
    }
    for inbox in &inboxes {
        let got = received(inbox, &sender).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, text);
    }
    assert!(
        received(&unsubscribed, &sender).await.is_empty(),
        "unsubscribed wallet got a message"
    );
}

/// herald calls its embedded node in-process by default; with that off it goes through gRPC
/// over loopback like any client (the path a separate `herald devnode` or a real v3 node
/// takes). Both first contact and a repeat reach the official SDK that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_in_process_calls_off_the_sdk_reads_first_contact_and_repeat() {
    let app = TestApp::spawn_with(|c| {
        c.xmtp.workers = 1;
        c.xmtp.embedded_in_process = false;
    })
    .await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "alerts").await;
    let sender = app.inbox_of(&key, &channel).await;
    let mut sdk = Sdk::start().await;
    let user = sdk.user("grpc-reader", &app.xmtp_url).await;
    app.subscribe(&key, &channel, &[user.address.to_lowercase()])
        .await;
    let mut sent = Vec::new();
    for n in ["first", "second"] {
        let text = format!("{n} over gRPC ({})", ulid::Ulid::new());
        let r = app
            .post_announcement(&key, &channel, json!({ "text": text }))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let done = wait_completed(&app, &key, r.body["id"].as_str().unwrap()).await;
        assert_eq!(done["counts"]["delivered"], 1, "{done}");
        sent.push(text);
    }
    let texts = sdk.dm_texts(&user.name, &sender).await.expect("a DM");
    assert_eq!(texts, sent);
    sdk.shutdown().await;
}
