//! Pacing: with the node's rate limit on (a small budget keeps the test short), a broadcast
//! larger than the burst completes with no failed delivery, never refused by the node's
//! limit, at ≥ 85% of the speed the budget allows, measured by the node's accept timestamps.

use std::time::Duration;

use chrono::Utc;

use futures_util::{stream, StreamExt as _};
use reqwest::StatusCode;
use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig, RateLimit};

use crate::helpers::*;
use crate::pipeline::{herald_inbox, wait_completed};

const BURST: u32 = 10;
const PER_MINUTE: u32 = 600;
/// Large enough that fixed costs (waking, opening the channel's client: about 0.1 s) stay well
/// inside the 5% the bar allows: at 10/s the repeat run may lose up to 0.8 s and still pass.
const SUBSCRIBERS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_under_the_node_rate_limit_uses_the_budget_and_fails_nothing() {
    let limit = RateLimit {
        burst: BURST,
        per_minute: PER_MINUTE,
    };
    let node = DevNode::start(DevNodeConfig {
        rate_limit: Some(limit),
        ..DevNodeConfig::default()
    })
    .await
    .unwrap();
    let url = node.url();
    let app = TestApp::spawn_with(|c| {
        c.xmtp.network = url.clone();
        c.xmtp.workers = 2;
        // The bar is the send rate; chat reads after the drain only add scheduling noise here.
        c.xmtp.inbound = false;
        c.xmtp.governor = herald::xmtp::GovernorMode::On;
        c.xmtp.rate_burst = BURST;
        c.xmtp.rate_per_minute = PER_MINUTE;
    })
    .await;
    let key = app.tenant("pace").await;
    // Registration is itself two writes; give the bucket time to refill.
    let channel = app.channel(&key, "paced").await;
    let inboxes: Vec<_> = stream::iter(0..SUBSCRIBERS)
        .map(|_| herald_inbox(&url))
        .buffer_unordered(8)
        .collect()
        .await;
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    app.subscribe(&key, &channel, &addrs).await;

    // First contact: DM creation costs extra writes and may meet RESOURCE_EXHAUSTED; that
    // must only pause, never fail.
    let post = |text: &'static str| {
        let path = format!("/v1/channels/{channel}/announcements");
        let app = &app;
        let key = key.clone();
        async move {
            let r = app.post(&path, &key, json!({ "text": text })).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let first = post("first contact").await;
    let done = wait_completed(&app, &key, &first).await;
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");

    // Wait until herald's bucket is full again (a condition, not a fixed sleep). herald debits
    // every write it makes and both buckets refill at the same rate, so herald's bucket is
    // never fuller than the node's: once herald's is full, the node's is too.
    wait_budget_full(&app, &url).await;
    let refused_before = node.rate_limited();
    let repeat = post("repeat").await;
    let done = wait_completed(&app, &key, &repeat).await;
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");
    // Never over the budget: the node refused none of the repeat's writes.
    assert_eq!(
        node.rate_limited(),
        refused_before,
        "herald overspent the node's budget"
    );

    // Measured by the node: the timestamps at which it accepted the repeat's messages. With a
    // full bucket at the start, the fastest the budget allows is the burst at once, then the
    // rest at the refill rate; the bar is 85% of that speed, far below what herald reaches
    // (~100%), so a loaded machine's scheduling noise cannot fail it, while a pacer that
    // wastes a sixth of the budget does.
    let sender = herald_sender_inbox(&app, &key, &channel).await;
    let accepted: Vec<u64> = stream::iter(&inboxes)
        .map(|inbox| {
            let sender = sender.clone();
            async move {
                inbox.sync_welcomes().await.unwrap();
                let messages = inbox.sync_dm(&sender).await.unwrap();
                let repeat: Vec<u64> = messages
                    .iter()
                    .filter(|m| m.text.as_deref() == Some("repeat"))
                    .map(|m| m.created_ns)
                    .collect();
                assert_eq!(repeat.len(), 1, "each subscriber reads the repeat once");
                repeat[0]
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let first = *accepted.iter().min().unwrap();
    let last = *accepted.iter().max().unwrap();
    let elapsed = (last - first) as f64 / 1e9;
    let fastest = (SUBSCRIBERS as f64 - f64::from(BURST)) * 60.0 / f64::from(PER_MINUTE);
    let speed = fastest / elapsed.max(f64::EPSILON);
    eprintln!(
        "pacing: the node accepted {SUBSCRIBERS} messages in {elapsed:.2}s; the budget allows \
         {fastest:.2}s ({:.0}% of the budget's speed)",
        speed * 100.0
    );
    assert!(
        speed >= 0.85,
        "used only {:.0}% of the budget ({elapsed:.2}s for {fastest:.2}s)",
        speed * 100.0
    );
    node.shutdown().await;
}

/// The channel's XMTP inbox id, as its API shows it.
async fn herald_sender_inbox(app: &TestApp, key: &str, channel: &str) -> String {
    app.inbox_of(key, channel).await
}

/// Waits until herald's write budget for the node at `url` has refilled to the burst.
async fn wait_budget_full(app: &TestApp, url: &str) {
    let budget = format!("writes {url}");
    let per_second = f64::from(PER_MINUTE) / 60.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row = app.store.pipeline().budget_get(&budget).await.unwrap();
        let missing = row.map_or(0.0, |r| {
            let since = (Utc::now() - r.refilled_at).as_seconds_f64().max(0.0);
            let paused = r.paused_until.is_some_and(|p| p > Utc::now());
            if paused {
                f64::from(BURST)
            } else {
                f64::from(BURST) - (r.tokens + since * per_second)
            }
        });
        if missing <= 0.0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "herald's budget never refilled"
        );
        tokio::time::sleep(
            Duration::from_secs_f64(missing / per_second).min(Duration::from_millis(500)),
        )
        .await;
    }
}
