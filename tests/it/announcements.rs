//! Announcements: fan-out, audiences, counts, deliveries, text limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{addresses, TestApp};

#[tokio::test]
async fn announcement_to_all_creates_one_pending_delivery_per_active_subscriber() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let subs = addresses(1, 5);
    app.subscribe(&key, &ch, &subs).await;
    let gone = &subs[4];
    let path = format!("/v1/channels/{ch}/subscribers/{gone}");
    app.call(reqwest::Method::DELETE, &path, Some(&key), None)
        .await;

    let created = app
        .post_announcement(&key, &ch, json!({ "text": "hello" }))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("ann_"));
    assert_eq!(created.body["status"], "queued");
    assert_eq!(created.body["priority"], "normal");
    assert_eq!(
        created.body["counts"],
        json!({ "total": 4, "pending": 4, "delivered": 0, "failed": 0, "skipped": 0 })
    );

    let fetched = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["counts"], created.body["counts"]);
    assert_eq!(fetched.body["text"], "hello");

    let deliveries = app
        .get(&format!("/v1/announcements/{id}/deliveries"), &key)
        .await;
    let items = deliveries.body["items"].as_array().unwrap();
    let listed: Vec<&str> = items
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        subs[..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(items
        .iter()
        .all(|d| d["status"] == "pending" && d["attempts"] == 0));
}

#[tokio::test]
async fn targeted_audience_skips_non_subscribers_and_filters_by_status() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let subs = addresses(1, 3);
    app.subscribe(&key, &ch, &subs).await;
    let stranger = addresses(9, 1).remove(0);
    let audience = json!({ "addresses": [subs[0], subs[1], subs[1], stranger] });
    let created = app
        .post_announcement(
            &key,
            &ch,
            json!({ "text": "hi", "audience": audience, "priority": "critical" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    assert_eq!(created.body["priority"], "critical");
    assert_eq!(
        created.body["counts"],
        json!({ "total": 3, "pending": 2, "delivered": 0, "failed": 0, "skipped": 1 })
    );
    let id = created.body["id"].as_str().unwrap();

    let skipped = app
        .get(
            &format!("/v1/announcements/{id}/deliveries?status=skipped"),
            &key,
        )
        .await;
    let items = skipped.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["address"], stranger);
    assert_eq!(items[0]["reason"], "not_subscribed");
    let bad = app
        .get(
            &format!("/v1/announcements/{id}/deliveries?status=lost"),
            &key,
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status")
    );

    let explicit_all = app
        .post_announcement(&key, &ch, json!({ "text": "hi", "audience": "all" }))
        .await;
    assert_eq!(explicit_all.body["counts"]["total"], 3);
}

#[tokio::test]
async fn announcement_without_recipients_is_completed_at_once() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "empty").await;
    let created = app
        .post_announcement(&key, &ch, json!({ "text": "anyone?" }))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    assert_eq!(created.body["status"], "completed");
    assert_eq!(created.body["counts"]["total"], 0);
}

#[tokio::test]
async fn announcement_body_is_validated() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let path = format!("/v1/channels/{ch}/announcements");
    let cases = [
        (json!({ "text": "" }), "invalid_text"),
        (json!({ "text": "x".repeat(16 * 1024 + 1) }), "invalid_text"),
        (json!({ "text": "é".repeat(8 * 1024 + 1) }), "invalid_text"),
        (json!({ "text": "hi", "audience": "some" }), "invalid_body"),
        (
            json!({ "text": "hi", "audience": { "addresses": [] } }),
            "invalid_audience",
        ),
        (
            json!({ "text": "hi", "audience": { "addresses": ["0x12"] } }),
            "invalid_address",
        ),
        (
            json!({ "text": "hi", "audience": { "addresses": addresses(1, 10_001) } }),
            "invalid_audience",
        ),
        (
            json!({ "text": "hi", "priority": "urgent" }),
            "invalid_body",
        ),
        (json!({ "text": "hi", "subject": "x" }), "invalid_body"),
        (json!({ "message": "hi" }), "invalid_body"),
    ];
    for (body, code) in cases {
        let reply = app.post(&path, &key, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{}",
            reply.body
        );
    }
    let at_limit = app
        .post(&path, &key, json!({ "text": "x".repeat(16 * 1024) }))
        .await;
    assert_eq!(at_limit.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn deliveries_paginate_and_unknown_announcements_are_404() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let subs = addresses(4, 7);
    app.subscribe(&key, &ch, &subs).await;
    let created = app
        .post_announcement(&key, &ch, json!({ "text": "hi" }))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut path = format!("/v1/announcements/{id}/deliveries?limit=3");
    loop {
        let page = app.get(&path, &key).await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["address"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/announcements/{id}/deliveries?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, subs);
    let missing = app
        .get("/v1/announcements/ann_01JD3S8Z6XKQ8W4N2M5V7B9C1D", &key)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "announcement_not_found")
    );
    let junk = app.get("/v1/announcements/nonsense/deliveries", &key).await;
    assert_eq!(junk.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_channel_skips_its_pending_deliveries() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    app.subscribe(&key, &ch, &addresses(5, 2)).await;
    let created = app
        .post_announcement(&key, &ch, json!({ "text": "hi" }))
        .await;
    let id = created.body["id"].as_str().unwrap();
    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/channels/{ch}"),
        Some(&key),
        None,
    )
    .await;
    let after = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(after.status, StatusCode::OK, "history stays readable");
    assert_eq!(after.body["counts"]["skipped"], 2);
    let post = app
        .post_announcement(&key, &ch, json!({ "text": "hi" }))
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ten_thousand_subscriber_fan_out() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "big").await;
    app.subscribe(&key, &ch, &addresses(6, 10_000)).await;
    let created = app
        .post_announcement(&key, &ch, json!({ "text": "all hands" }))
        .await;
    assert_eq!(created.body["counts"]["total"], 10_000);
    let id = created.body["id"].as_str().unwrap();
    let fetched = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(fetched.body["counts"]["pending"], 10_000);
}
