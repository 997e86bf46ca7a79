//! `make bench`: POST-announcement throughput and latency, and 10,000-subscriber fan-out time,
//! against a real herald on a throwaway Postgres (started by `scripts/with-postgres.sh`, which
//! exports `TEST_DATABASE_URL`; fsync stays on).
//!
//! Knobs: `BENCH_SECONDS` (default 10), `BENCH_CLIENTS` (concurrent connections, default 16,
//! as in the research baseline), `BENCH_SUBSCRIBERS` (recipients per announcement, default 10),
//! `BENCH_DB_CONNECTIONS` (herald's database pool, default 32).
//!
//! Server, Postgres and load generator share the machine, so the figures are only comparable to
//! the goal on an otherwise idle one; the printed load average says how busy it was.

use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "summary.rs"]
mod summary;

use cpu::CpuTicks;

use herald::app::App;
use herald::config::{Config, DatabaseUrl};
use herald::crypto::MasterKey;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::Connection as _;

const ADMIN: &str = "hadm_benchbenchbenchbenchbenchbenchbenchbench";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // Leave a core for Postgres and the load generator: the server gets two worker threads,
    // the same as a 2-core production box would.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let server = std::env::var("TEST_DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("run through `make bench` (needs TEST_DATABASE_URL to a Postgres server)")
    })?;
    let seconds = env_or("BENCH_SECONDS", 10);
    let clients = env_or("BENCH_CLIENTS", 16) as usize;
    let recipients = env_or("BENCH_SUBSCRIBERS", 10) as usize;

    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.database_url = DatabaseUrl::new(fresh_database(&server).await?);
    config.master_key = Some(SecretString::from(MasterKey::generate().to_hex()));
    config.admin_token = Some(SecretString::from(ADMIN.to_owned()));
    config.db_max_connections = env_or("BENCH_DB_CONNECTIONS", 32) as u32;
    // The benchmark measures the server's ceiling, not the per-tenant limit.
    config.http.rate_limit_per_second = 0;
    // One process, its own embedded node (the benchmark is not a deployment).
    config.xmtp.embedded_with_postgres = true;
    let app = App::build(&config).await?;
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(async move { app.run().await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let key = post(
        &client,
        &format!("{base}/v1/tenants"),
        ADMIN,
        json!({ "name": "bench" }),
    )
    .await?["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let channel = post(
        &client,
        &format!("{base}/v1/channels"),
        &key,
        json!({ "name": "bench" }),
    )
    .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    post(
        &client,
        &format!("{base}/v1/channels/{channel}/subscribers/batch"),
        &key,
        json!({ "addresses": addresses(1, recipients) }),
    )
    .await?;

    let url = format!("{base}/v1/channels/{channel}/announcements");
    println!("herald bench: Postgres (fsync on), {clients} concurrent clients, {recipients} recipients per announcement");
    // The server, Postgres and this load generator share the machine; anything else running
    // (compilers, other services) takes cores from them, so report how busy the machine was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = load.split_whitespace().next().unwrap_or("?");
        println!(
            "machine: {} cores, 1-minute load average {one_minute} before the run",
            num_cores()
        );
    }
    let _warmup = hammer(&client, &url, &key, clients, Duration::from_secs(2), false).await;
    let cpu_before = CpuTicks::sample();
    let plain = hammer(
        &client,
        &url,
        &key,
        clients,
        Duration::from_secs(seconds),
        false,
    )
    .await;
    plain.print("POST announcements");
    CpuTicks::sample()
        .since(&cpu_before)
        .print(plain.latencies.len());
    let cpu_before = CpuTicks::sample();
    let keyed = hammer(
        &client,
        &url,
        &key,
        clients,
        Duration::from_secs(seconds / 2 + 1),
        true,
    )
    .await;
    keyed.print("POST announcements + Idempotency-Key");
    CpuTicks::sample()
        .since(&cpu_before)
        .print(keyed.latencies.len());

    fan_out(&client, &base, &key).await?;
    let ok = plain.errors == 0
        && plain.throughput() >= 2000.0
        && plain.percentile(0.99) < Duration::from_millis(25);
    println!(
        "goal (>= 2,000 req/s, p99 < 25 ms, 0 errors): {}",
        if ok { "met" } else { "NOT met" }
    );
    summary::record(
        "REST POST announcements (Postgres)",
        ">= 2,000 req/s, p99 < 25 ms, 0 errors",
        &format!(
            "{:.0} req/s, p99 {:.1} ms, {} errors",
            plain.throughput(),
            plain.percentile(0.99).as_secs_f64() * 1e3,
            plain.errors
        ),
        Some(ok),
    );
    summary::record(
        "REST POST announcements + Idempotency-Key",
        ">= 1,500 req/s",
        &format!(
            "{:.0} req/s, p99 {:.1} ms, {} errors",
            keyed.throughput(),
            keyed.percentile(0.99).as_secs_f64() * 1e3,
            keyed.errors
        ),
        Some(keyed.errors == 0 && keyed.throughput() >= 1500.0),
    );
    Ok(())
}

/// Times one 10,000-subscriber announcement (all delivery rows created in its transaction).
async fn fan_out(client: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<()> {
    let channel = post(
        client,
        &format!("{base}/v1/channels"),
        key,
        json!({ "name": "fan-out" }),
    )
    .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    post(
        client,
        &format!("{base}/v1/channels/{channel}/subscribers/batch"),
        key,
        json!({ "addresses": addresses(2, 10_000) }),
    )
    .await?;
    let import = started.elapsed();
    let started = Instant::now();
    let created = post(
        client,
        &format!("{base}/v1/channels/{channel}/announcements"),
        key,
        json!({ "text": "all hands" }),
    )
    .await?;
    let fan_out = started.elapsed();
    let id = created["id"].as_str().unwrap_or_default();
    let started = Instant::now();
    let fetched: Value = client
        .get(format!("{base}/v1/announcements/{id}"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    let read = started.elapsed();
    println!(
        "fan-out: 10,000 subscribers imported in {:.0} ms; announcement with {} deliveries created in {:.0} ms; \
         GET with counts in {:.1} ms",
        import.as_secs_f64() * 1e3,
        fetched["counts"]["total"],
        fan_out.as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3
    );
    Ok(())
}

struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[index]
    }

    fn print(&self, label: &str) {
        println!(
            "{label}: {} requests in {:.1} s = {:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors {}",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            self.errors
        );
    }
}

/// `clients` loops posting announcements until `duration` has passed.
async fn hammer(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    clients: usize,
    duration: Duration,
    keyed: bool,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, url, key) = (client.clone(), url.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let mut request = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "text": "bench" }));
                if keyed {
                    request = request.header(
                        "Idempotency-Key",
                        format!("w{worker}-{n}-{}", ulid::Ulid::new()),
                    );
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut run = Run {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
    };
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            run.latencies.extend(latencies);
            run.errors += errors;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status} {value}");
    Ok(value)
}

/// Dividing the CPU a run used by the requests served gives the cost of one request.
impl CpuTicks {
    fn print(&self, requests: usize) {
        if requests == 0 || self.own + self.postgres == 0 {
            return;
        }
        let ms = |ticks: u64| ticks as f64 * 1000.0 / cpu::TICKS_PER_SECOND / requests as f64;
        let per_request = ms(self.own + self.postgres);
        println!(
            "CPU per request: {:.3} ms herald + load generator, {:.3} ms postgres; \
             ceiling on {} idle cores about {:.0} req/s",
            ms(self.own),
            ms(self.postgres),
            num_cores(),
            num_cores() as f64 * 1000.0 / per_request
        );
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

fn addresses(seed: u8, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("0x{seed:02x}{:038x}", i)).collect()
}

async fn fresh_database(server: &str) -> anyhow::Result<String> {
    let name = format!(
        "herald_bench_{}",
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
    let base = server.split('?').next().unwrap_or(server);
    let (root, _) = base
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("URL lacks a database path"))?;
    Ok(format!("{root}/{name}"))
}
