//! Every event type reaches the receiver, signed, and the reference `standardwebhooks`
//! implementation verifies each signature.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_signed_and_verified_by_the_reference_implementation() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| {
        fast(c);
        // Wide enough for the test to link a trigger match to its announcement first.
        c.webhooks.capture_lag_ms = 3000;
        c.xmtp.workers = 1;
    })
    .await;
    let key = app.tenant("acme").await;
    let all = create_webhook(&app, &key, json!({"url": format!("{}/all", receiver.base)})).await;
    assert_eq!(all.status, StatusCode::CREATED, "{}", all.body);
    let secret = all.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let only = create_webhook(
        &app,
        &key,
        json!({"url": format!("{}/only", receiver.base), "event_types": ["subscriber.subscribed"]}),
    )
    .await;
    assert_eq!(only.status, StatusCode::CREATED, "{}", only.body);
    let only_secret = only.body["secret"].as_str().unwrap().to_owned();
    // Another tenant's endpoint sees none of acme's events.
    let other = app.tenant("other").await;
    let theirs = create_webhook(
        &app,
        &other,
        json!({"url": format!("{}/other", receiver.base)}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    // Secrets are shown once: never listed.
    let listed = app.get("/v1/webhooks", &key).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );
    assert!(
        !listed.body.to_string().contains("whsec_"),
        "{}",
        listed.body
    );

    let channel = app.channel(&key, "alerts").await;
    let address = addresses(0xab, 1).remove(0);
    let subscribers = format!("/v1/channels/{channel}/subscribers");
    let r = app
        .call(
            Method::PUT,
            &format!("{subscribers}/{address}"),
            Some(&key),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            &format!("{subscribers}/{address}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let offline = addresses(0xac, 2);
    app.subscribe(&key, &channel, &offline).await;
    let posted = app
        .post_announcement(&key, &channel, json!({"text": "hello"}))
        .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.body);
    let announcement = posted.body["id"].as_str().unwrap().to_owned();
    // A trigger's match of this announcement, as the chain engine records it.
    let trigger = format!("trg_{}", ulid::Ulid::new());
    let tenant = raw(
        &app,
        &format!("SELECT tenant_id FROM channels WHERE id = '{channel}'"),
        &format!("SELECT tenant_id FROM channels WHERE id = '{channel}'"),
    )
    .await
    .remove(0);
    for (sqlite, postgres) in [
        (
            format!("INSERT INTO triggers (id, tenant_id, channel_id, chain_id, spec, revision, start_block, created_at, updated_at) \
                     VALUES ('{trigger}', '{tenant}', '{channel}', 31337, '{{}}', 1, 0, {SQLITE_NOW}, {SQLITE_NOW}) RETURNING id"),
            format!("INSERT INTO triggers (id, tenant_id, channel_id, chain_id, spec, revision, start_block, created_at, updated_at) \
                     VALUES ('{trigger}', '{tenant}', '{channel}', 31337, '{{}}', 1, 0, now(), now()) RETURNING id"),
        ),
        (
            format!("INSERT INTO chain_events (trigger_id, chain_id, tx_hash, log_position, block_number, block_hash, log_index, address, text, announcement_id, created_at) \
                     VALUES ('{trigger}', 31337, X'ab', 0, 7, X'cd', 3, X'ef', 'hello', '{announcement}', {SQLITE_NOW}) RETURNING trigger_id"),
            format!("INSERT INTO chain_events (trigger_id, chain_id, tx_hash, log_position, block_number, block_hash, log_index, address, text, announcement_id, created_at) \
                     VALUES ('{trigger}', 31337, '\\xab'::bytea, 0, 7, '\\xcd'::bytea, 3, '\\xef'::bytea, 'hello', '{announcement}', now()) RETURNING trigger_id"),
        ),
    ] {
        raw(&app, &sqlite, &postgres).await;
    }
    crate::pipeline::wait_completed(&app, &key, &announcement).await;
    // A delivery the pipeline gave up on (offline addresses are skipped, so one is marked
    // failed here, as the pipeline's permanent failure does).
    let failed = raw(
        &app,
        &format!("UPDATE deliveries SET status = 'failed', reason = 'rejected', updated_at = {SQLITE_NOW} \
                  WHERE announcement_id = '{announcement}' AND address = '{}' RETURNING address", offline[0]),
        &format!("UPDATE deliveries SET status = 'failed', reason = 'rejected', updated_at = now() \
                  WHERE announcement_id = '{announcement}' AND address = '{}' RETURNING address", offline[0]),
    )
    .await;
    assert_eq!(failed.len(), 1);

    let wanted = [
        "announcement.completed",
        "delivery.failed",
        "subscriber.subscribed",
        "subscriber.unsubscribed",
        "trigger.matched",
    ];
    let got = receiver
        .wait_for("/all", "every event type", |got| {
            wanted
                .iter()
                .all(|t| got.iter().any(|r| event_type(r) == *t))
        })
        .await;
    let bodies: HashMap<String, Value> = got
        .iter()
        .map(|r| (event_type(r), serde_json::from_str(&r.body).unwrap()))
        .collect();
    assert_eq!(
        bodies["announcement.completed"]["data"]["announcement_id"],
        announcement
    );
    assert_eq!(bodies["announcement.completed"]["data"]["total"], 2);
    assert_eq!(bodies["delivery.failed"]["data"]["address"], offline[0]);
    assert_eq!(bodies["delivery.failed"]["data"]["reason"], "rejected");
    assert_eq!(bodies["subscriber.unsubscribed"]["data"]["source"], "api");
    assert_eq!(
        bodies["subscriber.unsubscribed"]["data"]["address"],
        address
    );
    assert_eq!(bodies["trigger.matched"]["data"]["trigger_id"], trigger);
    assert_eq!(bodies["trigger.matched"]["data"]["tx_hash"], "0xab");
    // Every message verifies under the endpoint's secret and under no other.
    let mut checks: Vec<(&str, &Received)> = got.iter().map(|r| (secret.as_str(), r)).collect();
    checks.extend(got.iter().map(|r| (only_secret.as_str(), r)));
    let verdicts = verify(&checks).await;
    let (own, foreign) = verdicts.split_at(got.len());
    assert!(own.iter().all(|v| *v), "{verdicts:?}");
    assert!(foreign.iter().all(|v| !*v), "{verdicts:?}");

    // The filtered endpoint got only subscribed events (API and import), each verified.
    let only_got = receiver
        .wait_for("/only", "the subscribed events", |got| got.len() >= 3)
        .await;
    assert!(only_got
        .iter()
        .all(|r| event_type(r) == "subscriber.subscribed"));
    let checks: Vec<(&str, &Received)> =
        only_got.iter().map(|r| (only_secret.as_str(), r)).collect();
    assert!(verify(&checks).await.iter().all(|v| *v));
    assert!(receiver.at("/other").is_empty());
    // Every line of the log settles delivered with the receiver's 200.
    let all_id = all.body["id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let log = delivery_log(&app, &key, all_id).await;
        let items = log["items"].as_array().unwrap();
        if items.len() >= 5
            && items
                .iter()
                .all(|i| i["status"] == "delivered" && i["last_status_code"] == 200)
        {
            break;
        }
        assert!(start.elapsed() < WAIT, "the log never settled: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
