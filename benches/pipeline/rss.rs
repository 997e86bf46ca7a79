//! Peak RSS of a `herald serve` process (Postgres) that enqueues one announcement to
//! 1,000,000 subscribers: the subscribers are bulk-loaded by SQL, then one POST fans out.
//!
//! Delivery workers are off (`HERALD_XMTP_WORKERS=0`) so the figure is the enqueue alone; the
//! process's VmHWM (kernel high-water mark of resident memory) is read from /proc.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald::crypto::MasterKey;
use serde_json::json;
use sqlx::Connection as _;

use crate::{fresh_postgres, knob, Api, ADMIN};

const GOAL_MB: f64 = 300.0;

/// Kills the server when the bench ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

pub async fn run() -> anyhow::Result<()> {
    let n: u64 = knob("BENCH_FANOUT_SUBSCRIBERS", 1_000_000);
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        println!("\n== fan-out RSS skipped: needs TEST_DATABASE_URL (run under scripts/with-postgres.sh)");
        return Ok(());
    };
    let database_url = fresh_postgres(&server).await?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("herald.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_DATABASE_URL", &database_url)
        .env("HERALD_DATA_DIR", dir.path())
        .env("HERALD_MASTER_KEY", MasterKey::generate().to_hex())
        .env("HERALD_ADMIN_TOKEN", ADMIN)
        .env("HERALD_LOG_FILTER", "warn")
        .env("HERALD_XMTP_EMBEDDED_LISTEN", "127.0.0.1:0")
        .env("HERALD_XMTP_WORKERS", "0")
        .env("HERALD_XMTP_EMBEDDED_WITH_POSTGRES", "true")
        .env("HERALD_HTTP_RATE_LIMIT_PER_SECOND", "0")
        // One million rows in one statement can outlast the default 30 s request timeout.
        .env("HERALD_HTTP_REQUEST_TIMEOUT_SECS", "60")
        .arg("serve")
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()?;
    let server = Server(child);
    let pid = server.0.id();
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    while api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .is_err()
    {
        let log = dir.path().join("herald.log");
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "herald serve did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (key, channel) = api.tenant_and_channel("rss").await?;
    let channel_id = channel["id"].as_str().unwrap_or_default().to_owned();

    let loading = Instant::now();
    let mut db = sqlx::PgConnection::connect(&database_url).await?;
    sqlx::query(
        "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
         SELECT $1, '0x' || lpad(to_hex(g), 40, '0'), 'active', now(), now() \
         FROM generate_series(1, $2::bigint) AS g",
    )
    .bind(&channel_id)
    .bind(n as i64)
    .execute(&mut db)
    .await?;
    println!(
        "\n== fan-out enqueue RSS: {n} subscribers bulk-loaded by SQL in {:.1} s (not counted), \
         herald serve on Postgres, delivery workers off",
        loading.elapsed().as_secs_f64()
    );

    let before = vm_hwm_mb(pid)?;
    let posting = Instant::now();
    let path = format!("/v1/channels/{channel_id}/announcements");
    let created = api
        .call("POST", &path, &key, Some(json!({ "text": "one million" })))
        .await?;
    let seconds = posting.elapsed().as_secs_f64();
    let peak = vm_hwm_mb(pid)?;
    println!(
        "POST /v1/announcements: total {} enqueued in {seconds:.1} s ({:.0} rows/s)",
        created["counts"]["total"],
        n as f64 / seconds.max(1e-9)
    );
    println!(
        "herald serve peak RSS (VmHWM): {before:.0} MB before, {peak:.0} MB after the fan-out \
         (goal < {GOAL_MB:.0} MB: {})",
        if peak < GOAL_MB { "met" } else { "NOT met" }
    );
    drop(server);
    Ok(())
}
