//! Pacing: with the node's rate limit on (a small budget keeps the test short), a broadcast
//! larger than the burst completes with no failed delivery, at ≥ 95% of the budget.

use std::time::Duration;

use chrono::{DateTime, Utc};

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

    // Let both buckets refill to the burst, then time a repeat broadcast to existing DMs.
    // herald's bucket may end first contact in debt: a round sized by the tokens available
    // (at most BURST) can spend up to three times that (message + commit + welcome per new
    // DM), so a full refill takes up to 3 × BURST tokens.
    let refill = Duration::from_secs_f64(3.0 * f64::from(BURST) * 60.0 / f64::from(PER_MINUTE));
    tokio::time::sleep(refill + Duration::from_secs(1)).await;
    let repeat = post("repeat").await;
    let done = wait_completed(&app, &key, &repeat).await;
    // Measured from the rows themselves (creation to last settlement), not from polling.
    let created: DateTime<Utc> = serde_json::from_value(done["created_at"].clone()).unwrap();
    let rows = app
        .get(
            &format!("/v1/announcements/{repeat}/deliveries?limit=200"),
            &key,
        )
        .await
        .body;
    let settled: Vec<DateTime<Utc>> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["updated_at"].clone()).unwrap())
        .collect();
    let first = *settled.iter().min().unwrap();
    let last = *settled.iter().max().unwrap();
    let elapsed = (last - created).as_seconds_f64();
    // Time to the first send is lost budget (the bucket is already full): reported for
    // diagnosis, and why SUBSCRIBERS is large enough to leave room for it.
    eprintln!(
        "pacing: first delivery {:.2}s after creation",
        (first - created).as_seconds_f64()
    );
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");
    let budget = f64::from(BURST) + elapsed * f64::from(PER_MINUTE) / 60.0;
    let ratio = SUBSCRIBERS as f64 / budget;
    eprintln!(
        "pacing: {SUBSCRIBERS} messages in {elapsed:.2}s, {:.0}% of the budget",
        ratio * 100.0
    );
    assert!(
        ratio >= 0.95,
        "used only {:.0}% of the budget ({elapsed:.2}s)",
        ratio * 100.0
    );
    assert!(ratio <= 1.05, "exceeded the budget: {:.0}%", ratio * 100.0);
    node.shutdown().await;
}
