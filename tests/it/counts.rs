//! An announcement keeps its delivery counts and pace on its own row (issue 15): whatever
//! moves its deliveries — a worker's settle (any outcome, a late `delivered` over a cancelled
//! row included), a cancel, its channel deleted — the counts `GET /v1/announcements/{id}`
//! shows stay equal to what its delivery rows say. Workers are off: the test settles itself.

use chrono::{Duration, Utc};
use herald::domain::{AnnouncementId, ChannelId};
use herald::store::pipeline::{SenderLease, SettleOutcome};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// `[pending, delivered, failed, skipped]` as the announcement shows them.
fn shown(body: &Value) -> [i64; 4] {
    let c = &body["counts"];
    ["pending", "delivered", "failed", "skipped"].map(|k| c[k].as_i64().unwrap_or(-1))
}

/// `[pending, delivered, failed, skipped]` counted from the delivery rows.
async fn counted(app: &TestApp, id: &str) -> [i64; 4] {
    let rows = app
        .raw_strings_bound(
            "SELECT status || ':' || CAST(COUNT(*) AS TEXT) FROM deliveries \
             WHERE announcement_id = $1 GROUP BY status",
            id,
        )
        .await;
    let mut out = [0; 4];
    for row in rows {
        let (status, n) = row.split_once(':').unwrap();
        let i = ["pending", "delivered", "failed", "skipped"]
            .iter()
            .position(|s| *s == status)
            .unwrap();
        out[i] = n.parse().unwrap();
    }
    out
}

/// The announcement as shown, after checking its counts against its rows.
async fn checked(app: &TestApp, key: &str, id: &str) -> Value {
    let got = app.get(&format!("/v1/announcements/{id}"), key).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(shown(&got.body), counted(app, id).await, "{}", got.body);
    got.body
}

async fn lease(app: &TestApp, channel: &str) -> SenderLease {
    let now = Utc::now();
    app.store
        .pipeline()
        .acquire_sender(
            &ChannelId::from_trusted(channel.to_owned()),
            "counts-test",
            now + Duration::seconds(60),
            now,
        )
        .await
        .unwrap()
        .expect("the channel's lease is free")
}

#[tokio::test]
async fn every_move_of_a_delivery_keeps_the_shown_counts_equal_to_the_rows() {
    let app = TestApp::spawn().await;
    let key = app.tenant("counts").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(31, 6)).await;
    let r = app
        .post_announcement(&key, &channel, json!({ "text": "hi" }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(shown(&checked(&app, &key, &id).await), [6, 0, 0, 0]);

    let pipeline = app.store.pipeline();
    let lease = lease(&app, &channel).await;
    let now = Utc::now();
    let claimed = pipeline
        .claim_deliveries(&lease, now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let settled = pipeline
        .settle(
            &lease,
            &[
                (ids[0], SettleOutcome::Delivered),
                (ids[1], SettleOutcome::Delivered),
                (ids[2], SettleOutcome::Failed("boom".into())),
                (ids[3], SettleOutcome::Skipped("unsubscribed")),
                (
                    ids[4],
                    SettleOutcome::Retry {
                        at: now + Duration::hours(1),
                        reason: "later".into(),
                        failed_attempt: true,
                    },
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(settled.rows, 5);
    assert_eq!(
        settled.announcements,
        vec![(id.clone(), "queued".into(), "sending".into())]
    );
    let body = checked(&app, &key, &id).await;
    assert_eq!(shown(&body), [2, 2, 1, 1]);
    assert_eq!(body["status"], "sending");

    // The pace counts what workers settled (4 rows left pending), and when.
    let pace = pipeline
        .announcement_pace(&AnnouncementId::from_trusted(id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pace.settled_since, 4, "{pace:?}");
    let at = pace.settled_at.expect("settled");
    assert!((at - now).num_milliseconds().abs() < 1, "{pace:?} {now}");

    // Settling a row again as what it already is changes nothing.
    let again = pipeline
        .settle(&lease, &[(ids[0], SettleOutcome::Delivered)], now)
        .await
        .unwrap();
    assert_eq!(again.rows, 1);
    assert_eq!(shown(&checked(&app, &key, &id).await), [2, 2, 1, 1]);

    // Cancelled: both pending rows (one still claimed) end skipped.
    let r = app
        .post(&format!("/v1/announcements/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = checked(&app, &key, &id).await;
    assert_eq!(shown(&body), [0, 2, 1, 3]);
    assert_eq!(body["status"], "cancelled", "{body}");

    // The claimed row was being published when the cancel came: it did arrive, so its late
    // `delivered` overwrites `skipped`, and the counts follow.
    let late = pipeline
        .settle(&lease, &[(ids[5], SettleOutcome::Delivered)], now)
        .await
        .unwrap();
    assert_eq!(late.rows, 1);
    assert_eq!(shown(&checked(&app, &key, &id).await), [0, 3, 1, 2]);
    // …but a late failure or skip does not touch an ended row.
    let ignored = pipeline
        .settle(
            &lease,
            &[(ids[3], SettleOutcome::Failed("late".into()))],
            now,
        )
        .await
        .unwrap();
    assert_eq!(ignored.rows, 0);
    assert_eq!(shown(&checked(&app, &key, &id).await), [0, 3, 1, 2]);
}

#[tokio::test]
async fn a_deleted_channel_recounts_its_announcements() {
    let app = TestApp::spawn().await;
    let key = app.tenant("counts").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(32, 3)).await;
    let first = app
        .post_announcement(&key, &channel, json!({ "text": "one" }))
        .await;
    let first = first.body["id"].as_str().unwrap().to_owned();
    let second = app
        .post_announcement(&key, &channel, json!({ "text": "two" }))
        .await;
    let second = second.body["id"].as_str().unwrap().to_owned();

    let pipeline = app.store.pipeline();
    let lease = lease(&app, &channel).await;
    let now = Utc::now();
    let claimed = pipeline
        .claim_deliveries(&lease, now, now + Duration::seconds(60), 1)
        .await
        .unwrap();
    pipeline
        .settle(&lease, &[(claimed[0].id, SettleOutcome::Delivered)], now)
        .await
        .unwrap();
    assert_eq!(shown(&checked(&app, &key, &first).await), [2, 1, 0, 0]);

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{channel}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(shown(&checked(&app, &key, &first).await), [0, 1, 0, 2]);
    assert_eq!(shown(&checked(&app, &key, &second).await), [0, 0, 0, 3]);
}
