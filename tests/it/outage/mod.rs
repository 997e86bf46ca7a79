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

use crate::crash::{assert_each_inbox_once, inboxes, start_broadcast, Serve};
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
