//! Announcements: fan-out, audiences, counts, deliveries, text limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{addresses, send, TestApp};

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

/// On Postgres announcements and idempotency records have no foreign keys (migrations 0017,
/// 0019): only the code keeps a row from naming a missing channel, another tenant's channel or
/// a deleted one. Every way of creating an announcement is refused for each such channel, and
/// afterwards every stored row still points at rows that exist and agree on the tenant.
#[tokio::test]
async fn announcements_never_name_a_missing_or_foreign_channel() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let own = app.channel(&a, "own").await;
    let foreign = app.channel(&b, "foreign").await;
    let deleted = app.channel(&a, "deleted").await;
    let subs = addresses(1, 3);
    for ch in [&own, &foreign, &deleted] {
        let key = if *ch == foreign { &b } else { &a };
        app.subscribe(key, ch, &subs).await;
    }
    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/channels/{deleted}"),
        Some(&a),
        None,
    )
    .await;
    let missing = "ch_01JD3S8Z6XKQ8W4N2M5V7B9C1D".to_owned();
    let bodies = [
        json!({ "text": "to all" }),
        json!({ "text": "listed", "audience": { "addresses": [subs[0], subs[1]] } }),
    ];
    let mut n = 0;
    for ch in [&missing, &foreign, &deleted] {
        for body in &bodies {
            for keyed in [false, true] {
                n += 1;
                let mut request = app
                    .client
                    .post(app.url(&format!("/v1/channels/{ch}/announcements")))
                    .bearer_auth(&a)
                    .json(body);
                if keyed {
                    request = request.header("Idempotency-Key", format!("k{n}"));
                }
                let reply = send(request).await;
                assert_eq!(
                    reply.status,
                    StatusCode::NOT_FOUND,
                    "{ch} {body}: {}",
                    reply.body
                );
            }
        }
    }
    for (body, keyed) in bodies.iter().zip([false, true]) {
        let mut request = app
            .client
            .post(app.url(&format!("/v1/channels/{own}/announcements")))
            .bearer_auth(&a)
            .json(body);
        if keyed {
            request = request.header("Idempotency-Key", "accepted");
        }
        let reply = send(request).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }

    let stored = app
        .raw_strings("SELECT channel_id FROM announcements")
        .await;
    assert_eq!(
        stored,
        vec![own.clone(), own.clone()],
        "only the two accepted"
    );
    let keys = app.raw_strings("SELECT key FROM idempotency_keys").await;
    assert_eq!(keys, vec!["accepted"], "refused requests keep no key");
    let dangling = app
        .raw_strings(
            "SELECT a.id FROM announcements a LEFT JOIN channels c \
               ON c.id = a.channel_id AND c.tenant_id = a.tenant_id \
             WHERE c.id IS NULL \
             UNION ALL SELECT CAST(d.id AS TEXT) FROM deliveries d \
               LEFT JOIN announcements a ON a.id = d.announcement_id AND a.channel_id = d.channel_id \
             WHERE a.id IS NULL \
             UNION ALL SELECT k.key FROM idempotency_keys k LEFT JOIN tenants t ON t.id = k.tenant_id \
             WHERE t.id IS NULL",
        )
        .await;
    assert!(
        dangling.is_empty(),
        "rows naming no existing owner: {dangling:?}"
    );
}
