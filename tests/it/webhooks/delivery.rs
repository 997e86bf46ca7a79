//! Delivery survives failures: a 500 retried across a restart, an endpoint past the retry
//! ladder given up, a SIGKILL under a hanging retry losing nothing, two replicas sending each
//! event once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_answered_500_is_retried_across_a_restart_and_then_delivered() {
    let receiver = Receiver::start().await;
    receiver.set_mode(FAIL);
    let mut app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhooks.retry_schedule_secs = vec![1; 100];
    })
    .await;
    let key = app.tenant("acme").await;
    let hook = create_webhook(&app, &key, json!({"url": format!("{}/h", receiver.base)})).await;
    let secret = hook.body["secret"].as_str().unwrap().to_owned();
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let channel = app.channel(&key, "alerts").await;
    app.subscribe(&key, &channel, &addresses(0x01, 1)).await;

    let first = receiver
        .wait_for("/h", "a first attempt", |g| !g.is_empty())
        .await;
    let event_id = first[0].headers["webhook-id"].clone();
    // The receiver answers before herald settles the attempt: wait for the settlement.
    let log = wait_log(&app, &key, &id, "a settled 500", |i| i["attempts"] != 0).await;
    assert_eq!(log["items"][0]["status"], "pending", "{log}");
    assert_eq!(log["items"][0]["last_status_code"], 500, "{log}");
    assert!(log["items"][0]["next_attempt_at"].is_string(), "{log}");

    // herald stops between retries; the event is in the database, not in memory.
    app.restart().await;
    receiver.set_mode(OK);
    let got = receiver
        .wait_for("/h", "a retry after the restart", |g| g.len() >= 2)
        .await;
    assert!(
        got.iter().all(|r| r.headers["webhook-id"] == event_id),
        "one event, retried"
    );
    let log = wait_log(&app, &key, &id, "delivered", |i| i["status"] == "delivered").await;
    assert!(log["items"][0]["attempts"].as_i64().unwrap() >= 2, "{log}");
    assert_eq!(log["items"][0]["last_status_code"], 200, "{log}");
    assert!(log["items"][0]["next_attempt_at"].is_null(), "{log}");
    let checks: Vec<(&str, &Received)> = got.iter().map(|r| (secret.as_str(), r)).collect();
    assert!(verify(&checks).await.iter().all(|v| *v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_the_ladder_is_given_up() {
    let receiver = Receiver::start().await;
    receiver.set_mode(FAIL);
    let app = TestApp::spawn_with(fast).await;
    let key = app.tenant("acme").await;
    let hook = create_webhook(&app, &key, json!({"url": format!("{}/h", receiver.base)})).await;
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let channel = app.channel(&key, "alerts").await;
    app.subscribe(&key, &channel, &addresses(0x02, 1)).await;
    let log = wait_log(&app, &key, &id, "failed", |i| i["status"] == "failed").await;
    // One attempt plus one retry (the ladder has one rung).
    assert_eq!(log["items"][0]["attempts"], 2, "{log}");
    assert_eq!(receiver.at("/h").len(), 2);
    // Past the retention the log line and its event are deleted.
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    let deleted = app.store.purge_webhook_history(future, 1000).await.unwrap();
    assert_eq!(deleted, 2, "one attempt and its event");
    assert_eq!(delivery_log(&app, &key, &id).await["items"], json!([]));
    let metrics = herald::telemetry::metrics_handle().render();
    for outcome in ["retry", "failed"] {
        let line = format!("herald_webhook_deliveries_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} missing: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_killed_mid_retry_loses_no_event() {
    let receiver = Receiver::start().await;
    receiver.set_mode(FAIL);
    let node = xmtp_devnode::DevNode::start(xmtp_devnode::DevNodeConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.path().join("h.db").display()),
    };
    let serve = crate::crash::Serve::new(database_url, dir.path(), node.url()).with(&[
        ("HERALD_WEBHOOKS_ALLOW_PRIVATE", "[\"127.0.0.1/32\"]"),
        (
            "HERALD_WEBHOOKS_RETRY_SCHEDULE_SECS",
            "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
        ),
        ("HERALD_WEBHOOKS_TIMEOUT_SECS", "1"),
        ("HERALD_WEBHOOKS_CAPTURE_LAG_MS", "200"),
        ("HERALD_WEBHOOKS_POLL_INTERVAL_MS", "50"),
    ]);
    let log = dir.path().join("herald.log");
    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = &serve.base;
    let key = send(
        http.post(format!("{b}/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "acme"})),
    )
    .await
    .body["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = send(
        http.post(format!("{b}/v1/webhooks"))
            .bearer_auth(&key)
            .json(&json!({"url": format!("{}/h", receiver.base)})),
    )
    .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let secret = hook.body["secret"].as_str().unwrap().to_owned();
    let channel = send(
        http.post(format!("{b}/v1/channels"))
            .bearer_auth(&key)
            .json(&json!({"name": "alerts"})),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let address = addresses(0x06, 1).remove(0);
    let r = send(
        http.put(format!("{b}/v1/channels/{channel}/subscribers/{address}"))
            .bearer_auth(&key),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);

    // The first attempt fails; the retry is left hanging and herald is SIGKILLed under it.
    receiver
        .wait_for("/h", "a first attempt", |g| !g.is_empty())
        .await;
    receiver.set_mode(HANG);
    receiver.wait_for("/h", "a retry", |g| g.len() >= 2).await;
    child.kill();
    let before_restart = receiver.at("/h").len();
    receiver.set_mode(OK);
    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    // Only the restarted process can send (and settle) from here on.
    let got = receiver
        .wait_for("/h", "the event after the crash", |g| {
            g.len() > before_restart
        })
        .await;
    let hook_id = hook.body["id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let log = send(
            http.get(format!("{b}/v1/webhooks/{hook_id}/deliveries"))
                .bearer_auth(&key),
        )
        .await
        .body;
        if log["items"][0]["status"] == "delivered" {
            assert!(log["items"][0]["attempts"].as_i64().unwrap() >= 2, "{log}");
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "never settled after the crash: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill();
    let id = &got[0].headers["webhook-id"];
    assert!(
        got.iter().all(|r| &r.headers["webhook-id"] == id),
        "one event throughout"
    );
    let checks: Vec<(&str, &Received)> = got.iter().map(|r| (secret.as_str(), r)).collect();
    assert!(verify(&checks).await.iter().all(|v| *v));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_each_event_once() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(fast).await;
    // A second herald on the same database: both dispatchers claim from the same queue.
    let dir = tempfile::tempdir().unwrap();
    let mut config = herald::config::Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = herald::config::DatabaseUrl::new(app.database_url.clone());
    config.data_dir = dir.path().to_owned();
    config.master_key = Some(secrecy::SecretString::from(app.kek.to_hex()));
    config.admin_token = Some(secrecy::SecretString::from(ADMIN_TOKEN.to_owned()));
    config.db_max_connections = 5;
    config.xmtp.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.xmtp.workers = 0;
    config.xmtp.embedded_with_postgres = true;
    fast(&mut config);
    let replica = herald::app::App::build(&config)
        .await
        .expect("replica builds");
    let stop = replica.shutdown_token();
    let running = tokio::spawn(async move { replica.run().await.expect("replica runs") });

    let key = app.tenant("acme").await;
    let hook = create_webhook(&app, &key, json!({"url": format!("{}/h", receiver.base)})).await;
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let channel = app.channel(&key, "alerts").await;
    const N: usize = 40;
    app.subscribe(&key, &channel, &addresses(0x08, N)).await;
    let start = Instant::now();
    loop {
        let r = app
            .get(&format!("/v1/webhooks/{id}/deliveries?limit=1000"), &key)
            .await;
        let items = r.body["items"].as_array().unwrap();
        if items.len() == N && items.iter().all(|i| i["status"] == "delivered") {
            assert!(items.iter().all(|i| i["attempts"] == 1), "{}", r.body);
            break;
        }
        assert!(start.elapsed() < WAIT, "never all delivered: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.at("/h");
    let ids: std::collections::HashSet<&str> = got
        .iter()
        .map(|r| r.headers["webhook-id"].as_str())
        .collect();
    assert_eq!(ids.len(), N);
    assert_eq!(got.len(), N, "an event was sent twice");
    stop.cancel();
    running.await.unwrap();
}
