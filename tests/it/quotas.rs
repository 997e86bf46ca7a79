//! Per-tenant quotas: active subscribers, pending deliveries and the import batch size.

use reqwest::{Method, StatusCode};
use serde_json::json;
use xmtp_client::Wallet;

use crate::helpers::{addresses, send, Reply, TestApp};

fn assert_quota_refusal(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "quota_exceeded");
    assert!(reply.headers.contains_key("retry-after"));
    assert!(!reply.body["detail"].as_str().unwrap().is_empty());
}

async fn put_subscriber(app: &TestApp, key: &str, ch: &str, address: &str) -> Reply {
    app.call(
        Method::PUT,
        &format!("/v1/channels/{ch}/subscribers/{address}"),
        Some(key),
        None,
    )
    .await
}

#[tokio::test]
async fn active_subscribers_are_capped_per_tenant_on_every_subscribe_path() {
    let app = TestApp::spawn_with(|c| c.quotas.max_active_subscribers = 3).await;
    let key = app.tenant("acme").await;
    let (c1, c2) = (
        app.channel(&key, "one").await,
        app.channel(&key, "two").await,
    );
    let list = addresses(7, 6);
    for address in &list[..2] {
        assert_eq!(
            put_subscriber(&app, &key, &c1, address).await.status,
            StatusCode::CREATED
        );
    }
    // An import is counted whole: 2 + 2 > 3, and nothing of it is stored.
    let batch = |addrs: &[String]| json!({ "addresses": addrs });
    let path = format!("/v1/channels/{c2}/subscribers/batch");
    assert_quota_refusal(&app.post(&path, &key, batch(&list[2..4])).await);
    assert_eq!(
        app.post(&path, &key, batch(&list[2..3])).await.status,
        StatusCode::OK
    );
    assert_quota_refusal(&put_subscriber(&app, &key, &c2, &list[4]).await);
    // Re-subscribing an active address changes nothing and is allowed.
    assert_eq!(
        put_subscriber(&app, &key, &c1, &list[0]).await.status,
        StatusCode::OK
    );

    // A wallet-signature subscribe is refused too, without spending its challenge.
    let wallet = Wallet::generate();
    let challenge = app
        .call(
            Method::GET,
            &format!(
                "/v1/channels/{c1}/subscribe-challenge?address={}",
                wallet.address()
            ),
            None,
            None,
        )
        .await;
    let message = challenge.body["message"].as_str().unwrap().to_owned();
    let signed = json!({
        "message": message,
        "signature": format!("0x{}", hex::encode(wallet.sign_personal(&message))),
    });
    let subscribe = format!("/v1/channels/{c1}/subscriptions");
    let refused = app
        .call(Method::POST, &subscribe, None, Some(signed.clone()))
        .await;
    assert_quota_refusal(&refused);
    let unsubscribed = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{c1}/subscribers/{}", list[0]),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(unsubscribed.status, StatusCode::NO_CONTENT);
    let ok = app.call(Method::POST, &subscribe, None, Some(signed)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);

    // Other tenants have quotas of their own.
    let other = app.tenant("other").await;
    let theirs = app.channel(&other, "theirs").await;
    assert_eq!(
        put_subscriber(&app, &other, &theirs, &list[5]).await.status,
        StatusCode::CREATED
    );
    let metrics = herald::telemetry::metrics_handle().render();
    assert!(metrics.contains("herald_limited_requests_total{limit=\"active_subscribers\"}"));
}

#[tokio::test]
async fn announcements_wait_while_a_tenant_has_too_many_pending_deliveries() {
    // No workers in API tests: announcements stay queued, as under a flood.
    let app = TestApp::spawn_with(|c| c.quotas.max_pending_deliveries = 3).await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    app.subscribe(&key, &ch, &addresses(1, 2)).await;
    let body = json!({ "text": "hello" });
    for _ in 0..2 {
        let accepted = app.post_announcement(&key, &ch, body.clone()).await;
        assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    }
    // 4 recipients queued ≥ 3: refused, and its idempotency key is released.
    let with_key = |path: &str| {
        app.client
            .post(app.url(path))
            .bearer_auth(&key)
            .header("Idempotency-Key", "flood-1")
            .json(&body)
    };
    let path = format!("/v1/channels/{ch}/announcements");
    assert_quota_refusal(&send(with_key(&path)).await);
    let deliveries = app.raw_strings("SELECT address FROM deliveries").await;
    assert_eq!(
        deliveries.len(),
        4,
        "the refused announcement created nothing"
    );

    // Once the queue drains (here: the channel is deleted and its deliveries skipped), the
    // same request goes through.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{ch}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let fresh = app.channel(&key, "fresh").await;
    app.subscribe(&key, &fresh, &addresses(2, 1)).await;
    let retried = send(with_key(&format!("/v1/channels/{fresh}/announcements"))).await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
}

#[tokio::test]
async fn imports_larger_than_the_configured_batch_are_refused() {
    let app = TestApp::spawn_with(|c| c.quotas.max_import_batch = 2).await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let reply = app
        .post(
            &format!("/v1/channels/{ch}/subscribers/batch"),
            &key,
            json!({ "addresses": addresses(3, 3) }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "too_many_addresses");
    assert!(app
        .raw_strings("SELECT address FROM subscribers")
        .await
        .is_empty());
}
