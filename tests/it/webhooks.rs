//! Signed webhooks to tenants: every event type reaches a receiver whose signatures are
//! verified by the reference `standardwebhooks` package (run by node, independent of herald's
//! code; `interop/setup.sh` installs it); a 500 is retried, across a restart and across a
//! SIGKILL under a hanging retry; the SSRF guard refuses private targets at creation and at
//! send time; a rotated secret overlaps with its successor; a swap matched on anvil arrives as
//! `trigger.matched` (`scripts/setup-anvil.sh`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;

use crate::helpers::*;

/// Generous: a loaded 2-core machine runs several suites at once.
const WAIT: Duration = Duration::from_secs(120);

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

/// A loopback HTTP receiver recording every POST; answers 200, or 500 ([`FAIL`]), or never
/// ([`HANG`]), as its mode says.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    mode: Arc<AtomicU8>,
    base: String,
}

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;

impl Receiver {
    async fn start() -> Self {
        let mut receiver = Receiver::default();
        let shared = receiver.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(
                move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                    let shared = shared.clone();
                    async move {
                        let headers = headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect();
                        shared.got.lock().unwrap().push(Received {
                            path: uri.path().to_owned(),
                            headers,
                            body,
                        });
                        match shared.mode.load(Ordering::SeqCst) {
                            OK => AxumStatus::OK,
                            FAIL => AxumStatus::INTERNAL_SERVER_ERROR,
                            _ => std::future::pending().await,
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        receiver.base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn at(&self, path: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Waits until the requests to `path` satisfy `done`; returns them.
    async fn wait_for(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.at(path);
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < WAIT,
                "receiver never saw {what}: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn event_type(r: &Received) -> String {
    serde_json::from_str::<Value>(&r.body).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asks the reference implementation whether each (secret, message) pair verifies.
async fn verify(checks: &[(&str, &Received)]) -> Vec<bool> {
    let input: Vec<Value> = checks
        .iter()
        .map(|(secret, r)| {
            json!({
                "secret": secret,
                "headers": {
                    "webhook-id": r.headers["webhook-id"],
                    "webhook-timestamp": r.headers["webhook-timestamp"],
                    "webhook-signature": r.headers["webhook-signature"],
                },
                "body": r.body,
            })
        })
        .collect();
    let dir = crate::sdk::driver::interop_dir();
    assert!(
        dir.join("node_modules/standardwebhooks").exists(),
        "the reference standardwebhooks package is missing: run interop/setup.sh"
    );
    let mut child = tokio::process::Command::new("node")
        .arg("verify-webhooks.mjs")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "verifier failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Test settings: the receiver's loopback address allow-listed, fast polling, short ladder.
fn fast(c: &mut herald::config::Config) {
    c.webhooks.allow_private = vec!["127.0.0.1/32".into()];
    c.webhooks.poll_interval_ms = 50;
    c.webhooks.capture_lag_ms = 200;
    c.webhooks.retry_schedule_secs = vec![0];
}

async fn create_webhook(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/v1/webhooks", key, body).await
}

/// Polls the endpoint's delivery log until its newest line satisfies `done`; returns the log.
async fn wait_log(
    app: &TestApp,
    key: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let log = delivery_log(app, key, id).await;
        if done(&log["items"][0]) {
            return log;
        }
        assert!(start.elapsed() < WAIT, "the log never showed {what}: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivery_log(app: &TestApp, key: &str, id: &str) -> Value {
    let r = app.get(&format!("/v1/webhooks/{id}/deliveries"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Runs one SQL statement returning text (the test's stand-in for a source the API cannot
/// drive offline), with the backend's own spelling of "now" and of a byte string.
async fn raw(app: &TestApp, sqlite: &str, postgres: &str) -> Vec<String> {
    if app.database_url.starts_with("sqlite") {
        app.raw_strings(sqlite).await
    } else {
        app.raw_strings(postgres).await
    }
}

const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

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
