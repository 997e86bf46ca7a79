//! `make bench`: herald's delivery pipeline end to end (figures printed, not asserted).
//!
//! 1. [`broadcast`]: a 10,000-subscriber announcement through `App` with its delivery workers
//!    and embedded XMTP node, first contact (every DM created) then repeat (DMs exist), next to
//!    the same sends by the official `@xmtp/node-sdk` (interop/sdk-bench.mjs) through the same
//!    node: its capacity (recipients over fresh clients, none past the SDK's own 5,000 calls per
//!    60 s; the best of concurrency 16 and 64), the herald/SDK ratios against it, and what one
//!    SDK client gets as shipped (sustained past its rate limit).
//! 2. [`rss`]: peak RSS of a `herald serve` process enqueueing one announcement to 1,000,000
//!    subscribers on Postgres.
//!
//! Knobs: `BENCH_PIPELINE_SUBSCRIBERS` (10,000), `BENCH_SDK_SAMPLE` (SDK capacity recipients,
//! 1,000), `BENCH_SDK_SHIPPED` (recipients of the one-client "as shipped" SDK run, 1,200; 0 skips),
//! `BENCH_FANOUT_SUBSCRIBERS` (1,000,000), `BENCH_PIPELINE_DB` (`sqlite` default for part 1,
//! `postgres` to use `TEST_DATABASE_URL`), `BENCH_PIPELINE_ONLY` (`broadcast` or `rss`),
//! `BENCH_PIPELINE_NETWORK` (`v3` default, `d14n`: herald sends through the embedded node's
//! d14n gateway/node API).
//! Part 2 needs `TEST_DATABASE_URL` (run under scripts/with-postgres.sh, as `make bench` does).

/// The allocator `herald serve` uses (src/main.rs), so the in-process App is measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod broadcast;
#[path = "../support/cpu.rs"]
mod cpu;
mod rss;
mod sdk;
#[path = "../summary.rs"]
mod summary;

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection as _;

pub const ADMIN: &str = "hadm_pipelinebenchpipelinebenchpipelinebench";

/// A knob from the environment, or `default` when unset or unparsable.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // herald's own warnings and request errors go to stderr (RUST_LOG-style filter in BENCH_LOG).
    herald::telemetry::init_logging(&herald::config::LogConfig {
        format: herald::config::LogFormat::Text,
        filter: knob("BENCH_LOG", "warn".to_owned()),
    });
    // The server side gets two worker threads, like the 2-core box the goals are set for.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let only = std::env::var("BENCH_PIPELINE_ONLY").unwrap_or_default();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "pipeline bench: {cores} cores, 1-minute load average {} before the run \
             (other work on the machine makes these figures lower)",
            load.split_whitespace().next().unwrap_or("?")
        );
    }
    if only.is_empty() || only == "broadcast" {
        runtime.block_on(broadcast::run())?;
    }
    if only.is_empty() || only == "rss" {
        runtime.block_on(rss::run())?;
    }
    Ok(())
}

/// A new empty database on the Postgres server at `server`; returns its URL.
pub async fn fresh_postgres(server: &str) -> anyhow::Result<String> {
    let name = format!(
        "herald_pipe_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut admin = sqlx::PgConnection::connect(server).await?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut admin)
        .await?;
    cpu::count_server_of(backend);
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let (root, _) = server
        .split('?')
        .next()
        .and_then(|b| b.rsplit_once('/'))
        .ok_or_else(|| anyhow::anyhow!("TEST_DATABASE_URL lacks a database path"))?;
    Ok(format!("{root}/{name}"))
}

/// Minimal JSON API client for the benches.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {body}");
        Ok(body)
    }

    /// A tenant and one channel; returns (api key, channel body).
    pub async fn tenant_and_channel(&self, name: &str) -> anyhow::Result<(String, Value)> {
        let tenant = self
            .call(
                "POST",
                "/v1/tenants",
                ADMIN,
                Some(serde_json::json!({ "name": name })),
            )
            .await?;
        let key = tenant["api_key"].as_str().unwrap_or_default().to_owned();
        let channel = self
            .call(
                "POST",
                "/v1/channels",
                &key,
                Some(serde_json::json!({ "name": name })),
            )
            .await?;
        Ok((key, channel))
    }

    /// Polls an announcement until nothing is pending; returns `(seconds, body)` samples of
    /// the progress, the last one final.
    pub async fn follow(
        &self,
        key: &str,
        id: &str,
        started: std::time::Instant,
        timeout: Duration,
    ) -> anyhow::Result<Vec<(f64, Value)>> {
        let mut samples = Vec::new();
        loop {
            let body = self
                .call("GET", &format!("/v1/announcements/{id}"), key, None)
                .await?;
            let done = body["status"] == "completed";
            // Poll gently until the end is near, then closely: the finish time is what counts,
            // and each poll is a request the process serves (one row read: the announcement
            // keeps its counts).
            let counts = &body["counts"];
            let pending = counts["pending"].as_u64().unwrap_or(0);
            let total = counts["total"].as_u64().unwrap_or(0);
            let pause = if pending * 10 > total { 100 } else { 10 };
            samples.push((started.elapsed().as_secs_f64(), body));
            if done {
                return Ok(samples);
            }
            anyhow::ensure!(
                started.elapsed() < timeout,
                "announcement {id} not completed in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}
