//! Crash safety: a `herald serve` process is SIGKILLed mid-broadcast and restarted. Every
//! subscriber ends up with the announcement, and no inbox shows it twice: a resend after the
//! crash carries the same idempotency key, and publishes repeated are at most one batch.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt as _};
use herald::crypto::MasterKey;
use reqwest::StatusCode;
use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::helpers::*;
use crate::pipeline::herald_inbox;

const SUBSCRIBERS: usize = 2_000;
const BATCH: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(600);

/// A `herald serve` subprocess recipe: its environment and the base URL it answers on.
pub struct Serve {
    pub env: Vec<(String, String)>,
    pub base: String,
}

impl Serve {
    /// Environment for a subprocess on a free loopback port, sending through `node_url`.
    pub fn new(database_url: String, data_dir: &std::path::Path, node_url: String) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Serve {
            base: format!("http://127.0.0.1:{port}"),
            env: [
                ("HERALD_LISTEN", format!("127.0.0.1:{port}")),
                ("HERALD_DATABASE_URL", database_url),
                ("HERALD_DATA_DIR", data_dir.display().to_string()),
                ("HERALD_MASTER_KEY", MasterKey::generate().to_hex()),
                ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
                ("HERALD_LOG_FILTER", "info".to_owned()),
                ("HERALD_XMTP_NETWORK", node_url),
                ("HERALD_XMTP_EMBEDDED_LISTEN", "127.0.0.1:0".to_owned()),
                // Tests that use the embedded node run one server per database.
                ("HERALD_XMTP_EMBEDDED_WITH_POSTGRES", "true".to_owned()),
                ("HERALD_HTTP_RATE_LIMIT_PER_SECOND", "0".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }
    }

    /// Adds (or overrides) environment variables.
    pub fn with(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self.env.retain(|(name, _)| name != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        self
    }

    pub fn spawn(&self, log: &std::path::Path) -> Running {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .env_clear()
            .envs(self.env.iter().cloned())
            .arg("serve")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .map(Running)
            .expect("herald starts")
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        while client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(start.elapsed() < TIMEOUT, "herald did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn counts(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> serde_json::Value {
    let r = send(
        client
            .get(format!("{base}/v1/announcements/{id}"))
            .bearer_auth(key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A running `herald serve`; killed when dropped, so a failing test leaves no orphan behind.
pub struct Running(Child);

impl Running {
    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM (as `docker stop` / Ctrl-C would), then waits for the process to exit and
    /// returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.0.wait().unwrap().success()
    }

    /// Whether the process is still running (it has not exited or been restarted).
    pub fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A broadcast started through a subprocess's API.
pub struct Broadcast {
    pub key: String,
    /// The channel's XMTP inbox id (the DM peer every subscriber hears from).
    pub sender: String,
    pub id: String,
}

/// Creates a tenant and a channel, subscribes `addrs`, and announces `text` to all of them.
pub async fn start_broadcast(
    http: &reqwest::Client,
    b: &str,
    addrs: &[String],
    text: &str,
) -> Broadcast {
    let tenant = send(
        http.post(format!("{b}/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "broadcast"})),
    )
    .await;
    let key = tenant.body["api_key"].as_str().unwrap().to_owned();
    let ch = send(
        http.post(format!("{b}/v1/channels"))
            .bearer_auth(&key)
            .json(&json!({"name": "c"})),
    )
    .await;
    let channel = ch.body["id"].as_str().unwrap().to_owned();
    let sender = ch.body["xmtp"]["inbox_id"].as_str().unwrap().to_owned();
    let r = send(
        http.post(format!("{b}/v1/channels/{channel}/subscribers/batch"))
            .bearer_auth(&key)
            .json(&json!({"addresses": addrs})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        http.post(format!("{b}/v1/channels/{channel}/announcements"))
            .bearer_auth(&key)
            .json(&json!({"text": text})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    Broadcast { key, sender, id }
}

impl Broadcast {
    /// Waits until at least `n` deliveries are out, asserting the broadcast is not over yet.
    pub async fn wait_part_delivered(&self, http: &reqwest::Client, b: &str, n: i64, of: usize) {
        let start = Instant::now();
        loop {
            let delivered = counts(http, b, &self.key, &self.id).await["counts"]["delivered"]
                .as_i64()
                .unwrap();
            assert!(
                (delivered as usize) < of,
                "finished before the fault; raise the subscriber count"
            );
            if delivered >= n {
                return;
            }
            assert!(start.elapsed() < TIMEOUT, "broadcast never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until no delivery is pending (within `timeout`); returns the final body.
    pub async fn wait_completed(
        &self,
        http: &reqwest::Client,
        b: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let body = counts(http, b, &self.key, &self.id).await;
            if body["status"] == "completed" {
                return body;
            }
            assert!(start.elapsed() < timeout, "never completed: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Reads every inbox: asserts each shows exactly one distinct message (by idempotency key and
/// text) and returns the raw message count (publishes, duplicates included).
pub async fn assert_each_inbox_once(inboxes: &[xmtp_client::Client], sender: &str) -> usize {
    let per_inbox: Vec<(usize, usize)> = stream::iter(inboxes.iter())
        .map(|inbox| async move {
            inbox.sync_welcomes().await.unwrap();
            let msgs = inbox.sync_dm(sender).await.unwrap();
            let distinct: HashSet<(String, Option<String>)> = msgs
                .iter()
                .map(|m| (m.idempotency_key.clone(), m.text.clone()))
                .collect();
            (msgs.len(), distinct.len())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        per_inbox.iter().all(|(_, d)| *d == 1),
        "an inbox shows 0 or 2+ distinct messages"
    );
    per_inbox.iter().map(|(n, _)| n).sum()
}

/// `n` herald-client inboxes registered on the node at `url`.
pub async fn inboxes(url: &str, n: usize) -> Vec<xmtp_client::Client> {
    stream::iter(0..n)
        .map(|_| herald_inbox(url))
        .buffer_unordered(16)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_broadcast_then_restart_delivers_everything_once() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.path().join("h.db").display()),
    };
    let serve = Serve::new(database_url, dir.path(), node.url()).with(&[
        ("HERALD_XMTP_BATCH_SIZE", &BATCH.to_string()),
        ("HERALD_XMTP_LEASE_SECS", "5"),
    ]);
    let log = dir.path().join("herald.log");
    let t = Instant::now();
    let inboxes = inboxes(&node.url(), SUBSCRIBERS).await;
    eprintln!(
        "crash: {SUBSCRIBERS} inboxes registered in {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = &serve.base;
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    let cast = start_broadcast(&http, b, &addrs, "crash-safe announcement").await;

    // Kill once part of the broadcast is out but not all of it.
    cast.wait_part_delivered(&http, b, 2 * BATCH as i64, SUBSCRIBERS)
        .await;
    child.kill(); // SIGKILL

    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let done = cast.wait_completed(&http, b, TIMEOUT).await;
    eprintln!(
        "crash: broadcast, kill and restart done in {:?}",
        t.elapsed()
    );
    child.kill();
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");

    let t = Instant::now();
    let raw = assert_each_inbox_once(&inboxes, &cast.sender).await;
    eprintln!("crash: {SUBSCRIBERS} inboxes read in {:?}", t.elapsed());
    assert!(
        raw <= SUBSCRIBERS + BATCH,
        "{raw} publishes for {SUBSCRIBERS} deliveries"
    );
    node.shutdown().await;
}
