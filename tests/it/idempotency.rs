//! `Idempotency-Key` on announcement creation: replay, mismatch, concurrency, tenant scope.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{addresses, send, Reply, TestApp};

async fn post_with_key(
    app: &TestApp,
    api_key: &str,
    channel: &str,
    idem: &str,
    body: &str,
) -> Reply {
    let request = app
        .client
        .post(app.url(&format!("/v1/channels/{channel}/announcements")))
        .bearer_auth(api_key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", idem)
        .body(body.to_owned());
    send(request).await
}

#[tokio::test]
async fn same_key_and_body_replays_the_original_response() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    app.subscribe(&key, &ch, &addresses(1, 3)).await;

    let first = post_with_key(
        &app,
        &key,
        &ch,
        "order-1",
        r#"{"text":"hi","priority":"bulk"}"#,
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // More subscribers later must not change the replayed response.
    app.subscribe(&key, &ch, &addresses(2, 3)).await;
    // Same JSON with different whitespace and key order is the same request.
    let again = post_with_key(
        &app,
        &key,
        &ch,
        "order-1",
        r#"{ "priority": "bulk",  "text": "hi" }"#,
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);

    let without_key = app
        .post(
            &format!("/v1/channels/{ch}/announcements"),
            &key,
            json!({ "text": "hi", "priority": "bulk" }),
        )
        .await;
    assert_ne!(
        without_key.body["id"], first.body["id"],
        "no key, no deduplication"
    );
    assert_eq!(without_key.body["counts"]["total"], 6);
}

#[tokio::test]
async fn same_key_with_a_different_body_is_422() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let first = post_with_key(&app, &key, &ch, "k", r#"{"text":"one"}"#).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = post_with_key(&app, &key, &ch, "k", r#"{"text":"two"}"#).await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    // Same body to another channel is a different request too.
    let other = app.channel(&key, "other").await;
    let third = post_with_key(&app, &key, &other, "k", r#"{"text":"one"}"#).await;
    assert_eq!(third.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn keys_are_scoped_per_tenant() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let ch_a = app.channel(&a, "a").await;
    let ch_b = app.channel(&b, "b").await;
    let one = post_with_key(&app, &a, &ch_a, "shared", r#"{"text":"x"}"#).await;
    let two = post_with_key(&app, &b, &ch_b, "shared", r#"{"text":"y"}"#).await;
    assert_eq!(
        (one.status, two.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_ne!(one.body["id"], two.body["id"]);
}

#[tokio::test]
async fn validation_failures_do_not_consume_the_key() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let bad = post_with_key(&app, &key, &ch, "retry-me", r#"{"text":""}"#).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = post_with_key(
        &app,
        &key,
        "ch_01JD3S8Z6XKQ8W4N2M5V7B9C1D",
        "retry-me",
        r#"{"text":"x"}"#,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let good = post_with_key(&app, &key, &ch, "retry-me", r#"{"text":"fixed"}"#).await;
    assert_eq!(good.status, StatusCode::ACCEPTED);
    let invalid_key = post_with_key(&app, &key, &ch, &"k".repeat(256), r#"{"text":"x"}"#).await;
    assert_eq!(
        (invalid_key.status, invalid_key.code()),
        (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_announcement() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    // A large fan-out keeps the first request in flight long enough for others to collide.
    app.subscribe(&key, &ch, &addresses(7, 5_000)).await;
    let attempts = (0..8).map(|_| post_with_key(&app, &key, &ch, "burst", r#"{"text":"once"}"#));
    let replies = futures_util::future::join_all(attempts).await;

    let mut ids = Vec::new();
    for reply in &replies {
        match reply.status {
            StatusCode::ACCEPTED => ids.push(reply.body["id"].clone()),
            StatusCode::CONFLICT => assert_eq!(reply.code(), "idempotency_in_progress"),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(!ids.is_empty());
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every success names the same announcement: {ids:?}"
    );
    let total: Vec<String> = app.raw_strings("SELECT id FROM announcements").await;
    assert_eq!(total.len(), 1, "exactly one announcement was created");

    // After the first finished, a retry replays it.
    let later = post_with_key(&app, &key, &ch, "burst", r#"{"text":"once"}"#).await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    assert_eq!(later.body["id"], ids[0]);
    assert_eq!(later.body["counts"]["total"], Value::from(5_000));
}

/// On Postgres a new key is recorded by the statement that creates the announcement, with the
/// response rendered ahead for "no recipients" and, as a template, for any other count; the
/// replay must still be exactly the response first sent, whatever the count, the status or the
/// text (one quoting the template's stand-in number must not be rewritten).
#[tokio::test]
async fn replays_are_the_first_response_whatever_the_count_status_or_text() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let empty = app.channel(&key, "empty").await;
    app.subscribe(&key, &ch, &addresses(1, 12)).await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cases = [
        (&ch, "twelve", json!({ "text": "hi" }), "queued", 12),
        (&empty, "none", json!({ "text": "hi" }), "completed", 0),
        (
            &ch,
            "later",
            json!({ "text": "hi", "send_at": at }),
            "scheduled",
            14,
        ),
        (
            &ch,
            "quoted",
            json!({ "text": "9223372036854775807 and 2 and 15" }),
            "queued",
            15,
        ),
    ];
    for (i, (channel, idem, body, status, total)) in (0u8..).zip(cases) {
        let body = body.to_string();
        let first = post_with_key(&app, &key, channel, idem, &body).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{idem}: {}", first.body);
        assert_eq!(
            (
                first.body["status"].as_str(),
                &first.body["counts"]["total"]
            ),
            (Some(status), &Value::from(total)),
            "{idem}: {}",
            first.body
        );
        let stored = app
            .raw_strings_bound(
                "SELECT response_body FROM idempotency_keys WHERE key = $1",
                idem,
            )
            .await;
        let stored: Value = serde_json::from_str(&stored[0]).unwrap();
        assert_eq!(
            stored, first.body,
            "{idem}: the record holds the response sent"
        );
        // More subscribers later (one per case) must not change the replay.
        app.subscribe(&key, &ch, &addresses(10 + i, 1)).await;
        let again = post_with_key(&app, &key, channel, idem, &body).await;
        assert_eq!(again.headers["idempotent-replayed"], "true", "{idem}");
        assert_eq!(again.body, first.body, "{idem}");
    }
}
