//! Scheduling (`send_at`) and cancel (`POST /v1/announcements/{id}/cancel`): the API rules with
//! workers off, then end to end through the embedded node: a scheduled announcement reaches
//! inboxes only after `send_at`, and a cancel in the middle of a paced broadcast leaves no
//! pending row and sends nothing more than the documented in-flight batch.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::{herald_inbox, wait_completed};

const TIMEOUT: Duration = Duration::from_secs(300);

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn pending_rows(app: &TestApp, id: &str) -> Vec<String> {
    app.raw_strings(&format!(
        "SELECT address FROM deliveries WHERE announcement_id = '{id}' AND status = 'pending'"
    ))
    .await
}

#[tokio::test]
async fn send_at_is_checked_shown_and_a_scheduled_announcement_can_be_cancelled() {
    let app = TestApp::spawn().await;
    let key = app.tenant("sched").await;
    let channel = app.channel(&key, "later").await;
    app.subscribe(&key, &channel, &addresses(3, 4)).await;
    let path = format!("/v1/channels/{channel}/announcements");

    let past = rfc3339(Utc::now() - chrono::Duration::minutes(1));
    let far = rfc3339(Utc::now() + chrono::Duration::days(400));
    for bad in [json!("next tuesday"), json!(past), json!(far)] {
        let r = app
            .post(&path, &key, json!({ "text": "x", "send_at": bad }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.code(), "invalid_send_at", "{}", r.body);
    }

    let at = Utc::now() + chrono::Duration::hours(2);
    let r = app
        .post(
            &path,
            &key,
            json!({ "text": "later", "send_at": rfc3339(at) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "scheduled", "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(got.body["status"], "scheduled", "{}", got.body);
    let shown: DateTime<Utc> = got.body["send_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown.timestamp_millis(), at.timestamp_millis());
    assert_eq!(got.body["counts"]["pending"], 4, "{}", got.body);
    assert!(
        got.body["eta_seconds"].as_u64().unwrap() >= 7000,
        "the wait until send_at counts: {}",
        got.body
    );

    // Another tenant cannot see or cancel it.
    let stranger = app.tenant("stranger").await;
    let r = app
        .post(
            &format!("/v1/announcements/{id}/cancel"),
            &stranger,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let r = app
        .post(&format!("/v1/announcements/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled", "{}", r.body);
    assert!(r.body["cancelled_at"].is_string(), "{}", r.body);
    assert_eq!(
        r.body["counts"],
        json!({"total": 4, "pending": 0, "delivered": 0, "failed": 0, "skipped": 4}),
        "{}",
        r.body
    );
    assert!(pending_rows(&app, &id).await.is_empty());
    let skipped = app
        .get(&format!("/v1/announcements/{id}/deliveries"), &key)
        .await
        .body;
    for item in skipped["items"].as_array().unwrap() {
        assert_eq!(item["status"], "skipped", "{item}");
        assert_eq!(item["reason"], "cancelled", "{item}");
    }

    let again = app
        .post(&format!("/v1/announcements/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.code(), "announcement_finished");
    let missing = app
        .post(
            "/v1/announcements/ann_01JD3S8Z6XKQ8W4N2M5V7B9C1D/cancel",
            &key,
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_announcement_reaches_inboxes_only_after_send_at() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 2).await;
    let key = app.tenant("sched").await;
    let channel = app.channel(&key, "later").await;
    let sender = app.get(&format!("/v1/channels/{channel}"), &key).await.body["xmtp"]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inboxes = vec![
        herald_inbox(&app.xmtp_url).await,
        herald_inbox(&app.xmtp_url).await,
    ];
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    app.subscribe(&key, &channel, &addrs).await;

    let send_at = Utc::now() + chrono::Duration::seconds(4);
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            json!({ "text": "on time", "send_at": rfc3339(send_at) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "scheduled", "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    let done = wait_completed(&app, &key, &id).await;
    assert_eq!(done["counts"]["delivered"], 2, "{done}");
    let deliveries = app
        .get(&format!("/v1/announcements/{id}/deliveries"), &key)
        .await
        .body;
    let send_at_ms = send_at.timestamp_millis();
    for item in deliveries["items"].as_array().unwrap() {
        let settled: DateTime<Utc> = item["updated_at"].as_str().unwrap().parse().unwrap();
        assert!(
            settled.timestamp_millis() >= send_at_ms,
            "settled before send_at: {item}"
        );
    }
    // The node stamps each message as it is published: none before send_at.
    for inbox in &inboxes {
        inbox.sync_welcomes().await.unwrap();
        let msgs = inbox.sync_dm(&sender).await.unwrap();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[0].text.as_deref(), Some("on time"));
        assert!(
            (msgs[0].created_ns / 1_000_000) as i64 >= send_at_ms,
            "published {} ms before send_at",
            send_at_ms - (msgs[0].created_ns / 1_000_000) as i64
        );
    }
}

/// The per-claim batch the paced app below uses: the most a cancel may let through.
const BATCH: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_broadcast_leaves_nothing_pending_and_sends_nothing_more() {
    // One message a second (a new DM costs three writes): 24 recipients take over a minute.
    let app = TestApp::spawn_with(|c| {
        c.xmtp.workers = 1;
        c.xmtp.inbound = false;
        c.xmtp.governor = herald::xmtp::GovernorMode::On;
        c.xmtp.rate_burst = 4;
        c.xmtp.rate_per_minute = 60;
        c.xmtp.batch_size = BATCH;
    })
    .await;
    let key = app.tenant("cancel").await;
    let channel = app.channel(&key, "oops").await;
    let sender = app.get(&format!("/v1/channels/{channel}"), &key).await.body["xmtp"]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = app.xmtp_url.clone();
    let inboxes: Vec<_> = stream::iter(0..24)
        .map(|_| herald_inbox(&url))
        .buffer_unordered(6)
        .collect()
        .await;
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    app.subscribe(&key, &channel, &addrs).await;
    let path = format!("/v1/channels/{channel}/announcements");
    let r = app
        .post(&path, &key, json!({ "text": "wrong price" }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Mid-way: something delivered, most still pending.
    let start = Instant::now();
    loop {
        let got = app.get(&format!("/v1/announcements/{id}"), &key).await.body;
        if got["counts"]["delivered"].as_i64().unwrap() >= 1 {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "nothing delivered: {got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled = app
        .post(&format!("/v1/announcements/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    let counts = &cancelled.body["counts"];
    assert_eq!(counts["pending"], 0, "{}", cancelled.body);
    let delivered_at_cancel = counts["delivered"].as_i64().unwrap();
    assert!(
        counts["skipped"].as_i64().unwrap() >= 10,
        "cancelled mid-way: {}",
        cancelled.body
    );
    assert!(pending_rows(&app, &id).await.is_empty());

    // Barrier: a later announcement on the same channel is sent by the same sender after
    // anything it had in flight, so once it completes the first one has settled for good.
    let r = app
        .post(
            &path,
            &key,
            json!({ "text": "correction", "audience": {"addresses": [addrs[0]]} }),
        )
        .await;
    let later = r.body["id"].as_str().unwrap().to_owned();
    let done = wait_completed(&app, &key, &later).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");

    let after: Value = app.get(&format!("/v1/announcements/{id}"), &key).await.body;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(after["counts"]["pending"], 0, "{after}");
    assert_eq!(after["counts"]["failed"], 0, "{after}");
    let delivered = after["counts"]["delivered"].as_i64().unwrap();
    assert!(
        delivered <= delivered_at_cancel + BATCH as i64,
        "only the batch being published may follow the cancel: {delivered_at_cancel} then {after}"
    );
    // Every message received is counted delivered: nothing recorded skipped went out.
    let key_prefix = format!("herald:{id}:");
    let mut received = 0;
    for inbox in &inboxes {
        inbox.sync_welcomes().await.unwrap();
        if inbox.dm_group_id(&sender).await.is_none() {
            continue;
        }
        let msgs = inbox.sync_dm(&sender).await.unwrap();
        received += msgs
            .iter()
            .filter(|m| m.idempotency_key.starts_with(&key_prefix))
            .count() as i64;
    }
    assert_eq!(received, delivered, "{after}");
}
