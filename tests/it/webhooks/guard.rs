//! Who may receive and how: the SSRF guard at creation and at send time, a rotated secret
//! signing alongside its successor, a swap matched on anvil arriving as `trigger.matched`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_private_targets_at_creation_and_at_send_time() {
    let receiver = Receiver::start().await;
    let mut app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    for url in [
        format!("{}/h", receiver.base),
        "http://10.1.2.3/h".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]:8080/h".into(),
        "http://0.0.0.0/h".into(),
        "http://localhost/h".into(),
    ] {
        let r = create_webhook(&app, &key, json!({"url": url})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.body
        );
        assert_eq!(r.code(), "webhook_url_forbidden", "{url}");
    }
    for url in [
        "ftp://example.com/h",
        "not a url",
        "http://user:pw@example.com/",
    ] {
        let r = create_webhook(&app, &key, json!({"url": url})).await;
        assert_eq!(r.code(), "invalid_webhook_url", "{url}: {}", r.body);
    }
    let r = create_webhook(
        &app,
        &key,
        json!({"url": "https://example.com/h", "event_types": ["nope"]}),
    )
    .await;
    assert_eq!(r.code(), "invalid_event_type", "{}", r.body);

    // At most max_endpoints live endpoints per tenant; a deleted one frees its place.
    app.restart_with(|c| {
        fast(c);
        c.webhooks.max_endpoints = 2;
    })
    .await;
    let url = json!({"url": format!("{}/h", receiver.base)});
    let first = create_webhook(&app, &key, url.clone()).await;
    assert_eq!(
        create_webhook(&app, &key, url.clone()).await.status,
        StatusCode::CREATED
    );
    let third = create_webhook(&app, &key, url.clone()).await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.body
    );
    assert_eq!(third.code(), "quota_exceeded");
    let first = first.body["id"].as_str().unwrap();
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{first}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let after = create_webhook(&app, &key, url).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    let listed = app.get("/v1/webhooks", &key).await;
    for item in listed.body["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        app.call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            Some(&key),
            None,
        )
        .await;
    }

    // Allowed when the endpoint is made, no longer when it is sent to: refused after resolving.
    app.restart_with(fast).await;
    let hook = create_webhook(&app, &key, json!({"url": format!("{}/h", receiver.base)})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&key),
            Some(json!({"url": "http://192.168.0.1/h"})),
        )
        .await;
    assert_eq!(patched.code(), "webhook_url_forbidden", "{}", patched.body);
    app.restart_with(|c| c.webhooks.allow_private = vec![])
        .await;
    let channel = app.channel(&key, "alerts").await;
    app.subscribe(&key, &channel, &addresses(0x03, 1)).await;
    let log = wait_log(&app, &key, &id, "failed", |i| i["status"] == "failed").await;
    assert!(
        log["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{log}"
    );
    assert!(
        receiver.at("/h").is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_alongside_its_successor_during_the_overlap() {
    let receiver = Receiver::start().await;
    let mut app = TestApp::spawn_with(fast).await;
    let key = app.tenant("acme").await;
    let hook = create_webhook(&app, &key, json!({"url": format!("{}/h", receiver.base)})).await;
    let old = hook.body["secret"].as_str().unwrap().to_owned();
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let rotated = app
        .post(&format!("/v1/webhooks/{id}/rotate-secret"), &key, json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert!(
        rotated.body["previous_secret_valid_until"].is_string(),
        "{}",
        rotated.body
    );
    let channel = app.channel(&key, "alerts").await;
    app.subscribe(&key, &channel, &addresses(0x04, 1)).await;
    let got = receiver.wait_for("/h", "an event", |g| !g.is_empty()).await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2);
    assert_eq!(
        verify(&[(&old, &got[0]), (&new, &got[0])]).await,
        [true, true]
    );

    // With no overlap, a second rotation leaves only the newest secret signing.
    app.restart_with(|c| c.webhooks.secret_overlap_secs = 0)
        .await;
    let again = app
        .post(&format!("/v1/webhooks/{id}/rotate-secret"), &key, json!({}))
        .await;
    let newest = again.body["secret"].as_str().unwrap().to_owned();
    app.subscribe(&key, &channel, &addresses(0x05, 1)).await;
    let got = receiver
        .wait_for("/h", "a second event", |g| g.len() >= 2)
        .await;
    let last = &got[1];
    assert_eq!(last.headers["webhook-signature"].split(' ').count(), 1);
    assert_eq!(
        verify(&[(&old, last), (&new, last), (&newest, last)]).await,
        [false, false, true]
    );
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("/v1/webhooks/{id}"), &key).await;
    assert_eq!(r.code(), "webhook_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_matched_on_anvil_is_a_signed_trigger_matched_event() {
    use crate::chain_harness::{Chain, CHAIN_ID, SWAP, SWAP_TEMPLATE};
    let receiver = Receiver::start().await;
    let chain = Chain::start().await;
    let config = chain.config();
    let app = TestApp::spawn_with(move |c| {
        fast(c);
        c.chains = vec![config];
    })
    .await;
    let key = app.tenant("dex").await;
    let hook = create_webhook(
        &app,
        &key,
        json!({"url": format!("{}/t", receiver.base), "event_types": ["trigger.matched"]}),
    )
    .await;
    let secret = hook.body["secret"].as_str().unwrap().to_owned();
    let channel = app.channel(&key, "whale swaps").await;
    app.subscribe(&key, &channel, &addresses(0x07, 2)).await;
    // A trigger created once the watcher has its cursor starts at the next block.
    let start = Instant::now();
    while app
        .raw_strings("SELECT CAST(block_number AS TEXT) FROM chain_cursors")
        .await
        .is_empty()
    {
        assert!(start.elapsed() < WAIT, "the chain watcher never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = app
        .post(
            &format!("/v1/channels/{channel}/triggers"),
            &key,
            json!({
                "chain_id": CHAIN_ID,
                "address": chain.contract.to_string(),
                "event": SWAP,
                "template": SWAP_TEMPLATE,
                "confirmations": 1
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let trigger = created.body["id"].as_str().unwrap().to_owned();
    let (tx, block) = chain.swap(2, -1).await;
    chain.mine(1).await;

    let got = receiver
        .wait_for("/t", "the trigger.matched event", |g| !g.is_empty())
        .await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "trigger.matched", "{body}");
    assert_eq!(body["data"]["trigger_id"], trigger, "{body}");
    assert_eq!(body["data"]["channel_id"], channel, "{body}");
    assert_eq!(body["data"]["chain_id"], CHAIN_ID, "{body}");
    assert_eq!(body["data"]["block_number"], block, "{body}");
    assert_eq!(body["data"]["tx_hash"], tx.to_string(), "{body}");
    let announcement = body["data"]["announcement_id"].as_str().unwrap();
    let r = app
        .get(&format!("/v1/announcements/{announcement}"), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(verify(&[(&secret, &got[0])]).await, [true]);
}
