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

mod delivery;
mod events;
mod guard;

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
