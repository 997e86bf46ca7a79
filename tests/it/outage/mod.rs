//! Postgres outage (R8): a `herald serve` subprocess loses its database for 15 s in the middle
//! of a broadcast. While it is down the API answers 503 `database_unavailable` promptly (no
//! hang, no panic), `/readyz` is 503 and `/healthz` 200; once it is back the same process
//! recovers and the broadcast completes with every subscriber served exactly once.
//!
//! The test stops a database, so it runs its own throwaway cluster (never the shared one) and
//! only in the Postgres pass (`TEST_DATABASE_URL` set, as `make test-pg` does). SQLite has its
//! own scenario (`sqlite_locked.rs`: the database file locked by another process mid-broadcast).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::crash::{assert_each_inbox_once, inboxes, start_broadcast, Broadcast, Running, Serve};
use crate::helpers::*;

mod postgres_down;
mod sqlite_locked;
mod transactions;

const BATCH: usize = 20;
/// R8's bar: everything delivered within 60 s of Postgres returning.
const RECOVERY: Duration = Duration::from_secs(60);

/// One request; returns its status, body and how long the answer took.
async fn timed(req: reqwest::RequestBuilder) -> (StatusCode, serde_json::Value, Duration) {
    let start = Instant::now();
    let r = send(req).await;
    (r.status, r.body, start.elapsed())
}

fn panicked(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("panicked")
}

/// A paced `herald serve` subprocess with a broadcast under way: the outage scenarios cut its
/// database while the rest of the broadcast is still pending.
struct Underway {
    child: Running,
    http: reqwest::Client,
    base: String,
    cast: Broadcast,
    inboxes: Vec<xmtp_client::Client>,
    log: PathBuf,
    subscribers: usize,
}

/// Starts `herald serve` on `db` (its log in `dir`), paced by the governor at `burst` and
/// `per_minute`, broadcasts `text` to `subscribers` new inboxes and returns once two batches
/// are delivered.
async fn underway(
    db: String,
    dir: &Path,
    node_url: String,
    (burst, per_minute): (&str, &str),
    subscribers: usize,
    text: &str,
) -> Underway {
    let serve = Serve::new(db, dir, node_url.clone()).with(&[
        ("HERALD_XMTP_BATCH_SIZE", &BATCH.to_string()),
        ("HERALD_XMTP_LEASE_SECS", "5"),
        ("HERALD_XMTP_GOVERNOR", "on"),
        ("HERALD_XMTP_RATE_BURST", burst),
        ("HERALD_XMTP_RATE_PER_MINUTE", per_minute),
    ]);
    let log = dir.join("herald.log");
    let inboxes = inboxes(&node_url, subscribers).await;
    let child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = serve.base.as_str();
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    let cast = start_broadcast(&http, b, &addrs, text).await;
    cast.wait_part_delivered(&http, b, 2 * BATCH as i64, subscribers)
        .await;
    Underway {
        child,
        http,
        base: serve.base.clone(),
        cast,
        inboxes,
        log,
        subscribers,
    }
}

impl Underway {
    /// After the outage: the same process completes the broadcast (`done`, its final body),
    /// every subscriber served exactly once, nothing failed, no panic in the log.
    async fn assert_completed_once(mut self, done: &serde_json::Value) {
        assert!(self.child.alive(), "herald was restarted or died");
        self.child.kill();
        let n = self.subscribers;
        assert_eq!(done["counts"]["delivered"], json!(n), "{done}");
        assert_eq!(done["counts"]["failed"], json!(0), "{done}");
        assert!(!panicked(&self.log), "herald panicked; see its log");
        let raw = assert_each_inbox_once(&self.inboxes, &self.cast.sender).await;
        // A batch in flight when the database went away may be published again after it returns.
        assert!(raw <= n + BATCH, "{raw} publishes for {n} deliveries");
    }
}
