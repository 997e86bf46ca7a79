//! Chat self-service end to end in a running app: delivery workers on, the official SDK as the
//! subscriber, commands answered by `herald serve` itself (under the channel's sender lease,
//! triggered by the node's streams) and opt-outs honoured at send time.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{herald_inbox, received, wait_completed};
use crate::sdk::{Sdk, SdkUser};

/// Generous: a loaded 2-core machine runs several suites at once.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Polls the DM until a text containing `needle` shows up.
async fn wait_for(sdk: &mut Sdk, user: &SdkUser, dm: &str, needle: &str) {
    wait_for_nth(sdk, user, dm, needle, 1).await;
}

/// Polls the DM until `n` texts contain `needle`.
async fn wait_for_nth(sdk: &mut Sdk, user: &SdkUser, dm: &str, needle: &str, n: usize) {
    let start = Instant::now();
    loop {
        let texts = sdk.texts(user, dm).await;
        if texts.iter().filter(|t| t.contains(needle)).count() >= n {
            return;
        }
        assert!(
            start.elapsed() < REPLY_TIMEOUT,
            "{} never got {needle:?}: {texts:?}",
            user.name
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Number of texts in the DM that contain `needle`.
async fn count(sdk: &mut Sdk, user: &SdkUser, dm: &str, needle: &str) -> usize {
    let texts = sdk.texts(user, dm).await;
    texts.iter().filter(|t| t.contains(needle)).count()
}

async fn announce(app: &TestApp, key: &str, channel: &str, body: Value) -> String {
    let r = app
        .post(&format!("/v1/channels/{channel}/announcements"), key, body)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Delivery status and reason of `address` for announcement `id`.
async fn delivery_of(
    app: &TestApp,
    key: &str,
    id: &str,
    address: &str,
) -> Option<(String, String)> {
    let page = app
        .get(&format!("/v1/announcements/{id}/deliveries"), key)
        .await
        .body;
    page["items"].as_array().unwrap().iter().find_map(|d| {
        (d["address"].as_str()?.to_lowercase() == address.to_lowercase()).then(|| {
            let reason = d["reason"].as_str().unwrap_or_default().to_owned();
            (d["status"].as_str().unwrap().to_owned(), reason)
        })
    })
}

async fn consent(app: &TestApp, key: &str, channel: &str, address: &str) -> Value {
    app.get(
        &format!("/v1/channels/{channel}/subscribers/{address}/consent"),
        key,
    )
    .await
    .body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_user_manages_subscription_by_chat_with_herald_serve() {
    // A fallback poll far beyond the test: every answer below is triggered by the streams.
    let app = TestApp::spawn_with(|c| {
        c.xmtp.workers = 2;
        c.xmtp.inbound_poll_secs = 3600;
    })
    .await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "news").await;
    // Registration normally completes within the create request; on a loaded machine it can
    // be deferred to a delivery worker (the API's documented fallback), so wait for it.
    let mut channel_inbox = None;
    for _ in 0..120 {
        let ch = app.get(&format!("/v1/channels/{channel}"), &key).await.body;
        if let Some(inbox) = ch["xmtp"]["inbox_id"].as_str() {
            channel_inbox = Some(inbox.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let channel_inbox = channel_inbox.expect("registered within a minute");
    app.topic(&key, &channel, json!({"name": "security", "default": "on"}))
        .await;

    let mut sdk = Sdk::start().await;
    let alice = sdk.user("alice", &app.xmtp_url).await;
    let bob = sdk.user("bob", &app.xmtp_url).await;
    let carol = herald_inbox(&app.xmtp_url).await;
    // Bob and Carol are subscribed by the tenant; Alice subscribes herself.
    app.subscribe(
        &key,
        &channel,
        &[bob.address.clone(), carol.address().to_owned()],
    )
    .await;

    // Alice DMs `subscribe` and is confirmed.
    let dm = sdk.open_dm(&alice, &channel_inbox).await;
    sdk.say(&alice, &dm, "subscribe").await;
    wait_for(&mut sdk, &alice, &dm, "You're subscribed").await;
    let log = consent(&app, &key, &channel, &alice.address).await;
    assert_eq!(log["status"], "active", "{log}");

    // The next announcement reaches her, and Bob (herald opens his DM).
    let first = format!("first {}", ulid::Ulid::new());
    let id = announce(&app, &key, &channel, json!({"text": first})).await;
    wait_completed(&app, &key, &id).await;
    wait_for(&mut sdk, &alice, &dm, &first).await;

    // Bob replies STOP to the announcement herald sent him, and is unsubscribed.
    let bob_dm = sdk
        .find_dm(&bob, &channel_inbox)
        .await
        .expect("bob got the announcement DM");
    wait_for(&mut sdk, &bob, &bob_dm, &first).await;
    sdk.say(&bob, &bob_dm, "STOP").await;
    wait_for(&mut sdk, &bob, &bob_dm, "You're unsubscribed").await;
    let log = consent(&app, &key, &channel, &bob.address).await;
    assert_eq!(log["status"], "unsubscribed", "{log}");

    // Alice stops: confirmed, and later announcements send her nothing.
    sdk.say(&alice, &dm, "stop").await;
    wait_for(&mut sdk, &alice, &dm, "You're unsubscribed").await;
    let second = format!("second {}", ulid::Ulid::new());
    let id = announce(&app, &key, &channel, json!({"text": second})).await;
    wait_completed(&app, &key, &id).await;
    if let Some((status, reason)) = delivery_of(&app, &key, &id, &alice.address).await {
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("skipped", "unsubscribed")
        );
    }

    // START again: confirmed, and she receives again.
    sdk.say(&alice, &dm, "start").await;
    wait_for_nth(&mut sdk, &alice, &dm, "You're subscribed", 2).await;
    let third = format!("third {}", ulid::Ulid::new());
    let id = announce(&app, &key, &channel, json!({"text": third})).await;
    wait_completed(&app, &key, &id).await;
    wait_for(&mut sdk, &alice, &dm, &third).await;

    // Opt-outs made after enqueue, before sending, are honoured at send time. The test holds
    // the channel's sender lease so nothing is sent in between.
    let pipeline = app.store.pipeline();
    let channel_id = herald::domain::ChannelId::parse(&channel).unwrap();
    let lease = loop {
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(60);
        if let Some(l) = pipeline
            .acquire_sender(&channel_id, "test-hold", until, now)
            .await
            .unwrap()
        {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let fourth = format!("fourth {}", ulid::Ulid::new());
    let id = announce(
        &app,
        &key,
        &channel,
        json!({"text": fourth, "topic": "security"}),
    )
    .await;
    let off = app
        .call(
            Method::PUT,
            &format!(
                "/v1/channels/{channel}/subscribers/{}/topics/security",
                alice.address
            ),
            Some(&key),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::NO_CONTENT, "{}", off.body);
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{channel}/subscribers/{}", carol.address()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    pipeline.release_sender(&lease, None, None).await.unwrap();
    let done = wait_completed(&app, &key, &id).await;
    assert_eq!(done["counts"]["delivered"], 0, "{done}");
    assert_eq!(
        delivery_of(&app, &key, &id, &alice.address).await,
        Some(("skipped".into(), "topic_opt_out".into()))
    );
    assert_eq!(
        delivery_of(&app, &key, &id, carol.address()).await,
        Some(("skipped".into(), "unsubscribed".into()))
    );

    // What each inbox ended up with: Alice got first and third only, Bob only first.
    for (needle, want) in [(&first, 1), (&second, 0), (&third, 1), (&fourth, 0)] {
        assert_eq!(
            count(&mut sdk, &alice, &dm, needle).await,
            want,
            "alice: {needle}"
        );
    }
    for needle in [&second, &third, &fourth] {
        assert_eq!(
            count(&mut sdk, &bob, &bob_dm, needle).await,
            0,
            "bob: {needle}"
        );
    }
    let carol_got = received(&carol, &channel_inbox).await;
    assert_eq!(
        carol_got
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        [first.as_str(), second.as_str(), third.as_str()],
    );
    let log = consent(&app, &key, &channel, &alice.address).await;
    assert_eq!(log["status"], "active", "{log}");
    sdk.shutdown().await;
}
