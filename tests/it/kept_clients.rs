//! Kept channel clients (groups resident between drains) are reused only while nobody else
//! wrote the channel's state: a client kept across another writer's send would reuse that
//! writer's ratchet generations, and receivers could not read one of the two messages.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::helpers::*;
use crate::pipeline::{herald_inbox, received, wait_completed};
use herald::domain::ChannelId;
use herald::xmtp::channel::open_client;
use herald::xmtp::Xmtp;

async fn announce(app: &TestApp, key: &str, channel: &str, text: &str) {
    let r = app
        .post_announcement(key, channel, json!({ "text": text }))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    wait_completed(app, key, r.body["id"].as_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_client_is_not_reused_after_another_writer_sent() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 2).await;
    let key = app.tenant("kept").await;
    let channel = app.channel(&key, "kept").await;
    let mut inboxes = Vec::new();
    for _ in 0..3 {
        inboxes.push(herald_inbox(&app.xmtp_url).await);
    }
    let addresses: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    app.subscribe(&key, &channel, &addresses).await;

    // The worker keeps the channel's client after this drain.
    announce(&app, &key, &channel, "one").await;
    // Two more drains in a row: the kept client serves them (same lease holder, no writer
    // in between), and every message still arrives once.
    announce(&app, &key, &channel, "two").await;

    // Another writer (a second replica, say) takes the lease and sends on the same DM.
    let channel_id = ChannelId::parse(&channel).unwrap();
    let pipeline = app.store.pipeline();
    let lease = loop {
        let now = Utc::now();
        if let Some(l) = pipeline
            .acquire_sender(
                &channel_id,
                "other-replica",
                now + chrono::Duration::seconds(60),
                now,
            )
            .await
            .unwrap()
        {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut config = herald::config::Config::defaults().xmtp;
    config.network = app.xmtp_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let xmtp: Arc<Xmtp> = Xmtp::start(&config, dir.path()).await.unwrap();
    let kek = Arc::new(app.kek.clone());
    let (other, _) = open_client(&app.store, &kek, &xmtp, &lease).await.unwrap();
    other
        .send_text(inboxes[0].inbox_id(), "between", "test:between")
        .await
        .unwrap();
    drop(other);
    pipeline.release_sender(&lease, None, None).await.unwrap();

    // The worker must reopen from the database now, not reuse what it kept.
    announce(&app, &key, &channel, "three").await;

    let sender = app.inbox_of(&key, &channel).await;
    let first: Vec<String> = received(&inboxes[0], &sender)
        .await
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    assert_eq!(
        first,
        ["one", "two", "between", "three"],
        "every message readable, once"
    );
    for inbox in &inboxes[1..] {
        let texts: Vec<String> = received(inbox, &sender)
            .await
            .into_iter()
            .map(|(text, _)| text)
            .collect();
        assert_eq!(texts, ["one", "two", "three"]);
    }
}
