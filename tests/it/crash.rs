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

struct Serve {
    env: Vec<(String, String)>,
    base: String,
}

impl Serve {
    fn spawn(&self, log: &std::path::Path) -> Child {
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
            .expect("herald starts")
    }

    async fn wait_ready(&self) {
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

async fn counts(client: &reqwest::Client, base: &str, key: &str, id: &str) -> serde_json::Value {
    let r = send(
        client
            .get(format!("{base}/v1/announcements/{id}"))
            .bearer_auth(key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_broadcast_then_restart_delivers_everything_once() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.path().join("h.db").display()),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = Serve {
        base: format!("http://127.0.0.1:{port}"),
        env: [
            ("HERALD_LISTEN", format!("127.0.0.1:{port}")),
            ("HERALD_DATABASE_URL", database_url),
            ("HERALD_DATA_DIR", dir.path().display().to_string()),
            ("HERALD_MASTER_KEY", MasterKey::generate().to_hex()),
            ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("HERALD_LOG_FILTER", "info".to_owned()),
            ("HERALD_XMTP_NETWORK", node.url()),
            ("HERALD_XMTP_BATCH_SIZE", BATCH.to_string()),
            ("HERALD_XMTP_LEASE_SECS", "5".to_owned()),
            ("HERALD_HTTP_RATE_LIMIT_PER_SECOND", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    let log = dir.path().join("herald.log");
    let url = node.url();
    let inboxes: Vec<_> = stream::iter(0..SUBSCRIBERS)
        .map(|_| herald_inbox(&url))
        .buffer_unordered(16)
        .collect()
        .await;

    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = &serve.base;
    let tenant = send(
        http.post(format!("{b}/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "crash"})),
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
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    let r = send(
        http.post(format!("{b}/v1/channels/{channel}/subscribers/batch"))
            .bearer_auth(&key)
            .json(&json!({"addresses": addrs})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let text = "crash-safe announcement";
    let r = send(
        http.post(format!("{b}/v1/channels/{channel}/announcements"))
            .bearer_auth(&key)
            .json(&json!({"text": text})),
    )
    .await;
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Kill once part of the broadcast is out but not all of it.
    let start = Instant::now();
    loop {
        let delivered = counts(&http, b, &key, &id).await["counts"]["delivered"]
            .as_i64()
            .unwrap();
        assert!(
            (delivered as usize) < SUBSCRIBERS,
            "finished before the kill; raise SUBSCRIBERS"
        );
        if delivered >= 2 * BATCH as i64 {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "broadcast never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let start = Instant::now();
    let done = loop {
        let body = counts(&http, b, &key, &id).await;
        if body["status"] == "completed" {
            break body;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "never completed after restart: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");

    let per_inbox: Vec<(usize, usize)> = stream::iter(inboxes.iter())
        .map(|inbox| {
            let sender = sender.clone();
            async move {
                inbox.sync_welcomes().await.unwrap();
                let msgs = inbox.sync_dm(&sender).await.unwrap();
                let distinct: HashSet<(String, Option<String>)> = msgs
                    .iter()
                    .map(|m| (m.idempotency_key.clone(), m.text.clone()))
                    .collect();
                (msgs.len(), distinct.len())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let raw: usize = per_inbox.iter().map(|(n, _)| n).sum();
    assert!(
        per_inbox.iter().all(|(_, d)| *d == 1),
        "an inbox shows 0 or 2+ distinct messages"
    );
    assert!(
        raw <= SUBSCRIBERS + BATCH,
        "{raw} publishes for {SUBSCRIBERS} deliveries"
    );
    node.shutdown().await;
}
