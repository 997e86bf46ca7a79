//! Postgres outage (R8): a `herald serve` subprocess loses its database for 15 s in the middle
//! of a broadcast. While it is down the API answers 503 `database_unavailable` promptly (no
//! hang, no panic), `/readyz` is 503 and `/healthz` 200; once it is back the same process
//! recovers and the broadcast completes with every subscriber served exactly once.
//!
//! The test stops a database, so it runs its own throwaway cluster (never the shared one) and
//! only in the Postgres pass (`TEST_DATABASE_URL` set, as `make test-pg` does). SQLite has its
//! own scenario below (the database file locked by another process mid-broadcast).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::crash::{assert_each_inbox_once, inboxes, start_broadcast, Serve};
use crate::helpers::*;

const SUBSCRIBERS: usize = 300;
const BATCH: usize = 20;
const OUTAGE: Duration = Duration::from_secs(15);
/// Longest acceptable wait for an answer while the database is down (the pool's acquire
/// timeout is 5 s; anything near the 30 s request timeout would be a hang).
const PROMPT: Duration = Duration::from_secs(8);
/// R8's bar: everything delivered within 60 s of Postgres returning.
const RECOVERY: Duration = Duration::from_secs(60);

/// A Postgres cluster this test owns: created with initdb, stopped and started at will.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn pg_bin() -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Postgres is installed (/usr/lib/postgresql)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        dirs.sort();
        dirs.pop().expect("an initdb under /usr/lib/postgresql")
    }

    /// Runs a Postgres tool as the `postgres` user when we are root (Postgres refuses root).
    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("Postgres tool runs");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin: Self::pg_bin(),
            dir,
            port,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        cluster.start();
        cluster
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
        );
    }

    /// Stops at once, as a crash would: no checkpoint, every connection dropped.
    fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_15s_mid_broadcast_answers_503_then_completes() {
    if std::env::var("TEST_DATABASE_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("outage: Postgres-only; runs in the Postgres pass (make test-pg)");
        return;
    }
    let cluster = Cluster::init();
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Paced so the broadcast is still running when the database goes away.
    let serve = Serve::new(cluster.url(), dir.path(), node.url()).with(&[
        ("HERALD_XMTP_BATCH_SIZE", &BATCH.to_string()),
        ("HERALD_XMTP_LEASE_SECS", "5"),
        ("HERALD_XMTP_GOVERNOR", "on"),
        ("HERALD_XMTP_RATE_BURST", "60"),
        ("HERALD_XMTP_RATE_PER_MINUTE", "3000"),
    ]);
    let log = dir.path().join("herald.log");
    let inboxes = inboxes(&node.url(), SUBSCRIBERS).await;
    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = serve.base.as_str();
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    let cast = start_broadcast(&http, b, &addrs, "outage-proof announcement").await;
    cast.wait_part_delivered(&http, b, 2 * BATCH as i64, SUBSCRIBERS)
        .await;

    cluster.stop();
    let down = Instant::now();
    let mut probes = 0;
    while down.elapsed() < OUTAGE - PROMPT / 2 {
        // Concurrently, as clients would: each must answer within PROMPT on its own.
        let (get, create, ready, health) = tokio::join!(
            timed(
                http.get(format!("{b}/v1/announcements/{}", cast.id))
                    .bearer_auth(&cast.key)
            ),
            timed(
                http.post(format!("{b}/v1/channels"))
                    .bearer_auth(&cast.key)
                    .json(&json!({"name": "during outage"}))
            ),
            timed(http.get(format!("{b}/readyz"))),
            timed(http.get(format!("{b}/healthz"))),
        );
        for (what, (status, body, took)) in [("get", &get), ("create", &create), ("readyz", &ready)]
        {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
            assert!(
                *took < PROMPT,
                "{what} took {took:?} while Postgres was down"
            );
        }
        for body in [&get.1, &create.1] {
            assert_eq!(body["code"], "database_unavailable", "{body}");
            assert!(body["detail"].is_string(), "{body}");
        }
        assert_eq!(health.0, StatusCode::OK);
        eprintln!(
            "outage: answered 503 in {:?} (get), {:?} (create), {:?} (readyz)",
            get.2, create.2, ready.2
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(probes >= 2, "only {probes} probe rounds during the outage");
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    assert!(child.alive(), "herald exited during the outage");

    cluster.start();
    let back = Instant::now();
    let done = cast.wait_completed(&http, b, RECOVERY).await;
    eprintln!(
        "outage: completed {:?} after Postgres returned",
        back.elapsed()
    );
    let (status, _, _) = timed(http.get(format!("{b}/readyz"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(child.alive(), "herald was restarted or died");
    child.kill();
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");
    assert!(!panicked(&log), "herald panicked; see its log");

    let raw = assert_each_inbox_once(&inboxes, &cast.sender).await;
    // A batch in flight when the database went away may be published again after it returns.
    assert!(
        raw <= SUBSCRIBERS + BATCH,
        "{raw} publishes for {SUBSCRIBERS} deliveries"
    );
    node.shutdown().await;
}

/// SQLite's outage: another process holds the database file's write lock for a while in the
/// middle of a broadcast. Writes then fail as busy after the busy timeout, so the API answers
/// 503 `database_unavailable` (not a 500, not a hang) and workers retry; once the lock is
/// gone the same process completes the broadcast, every subscriber served exactly once. Runs in
/// both passes: it brings its own SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_locked_mid_broadcast_answers_503_then_completes() {
    const SUBSCRIBERS: usize = 200;
    /// SQLite's busy timeout (10 s in `store/sqlite`) plus a margin: beyond it, a hang.
    const PROMPT: Duration = Duration::from_secs(25);
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("herald.db").display());
    let serve = Serve::new(db.clone(), dir.path(), node.url()).with(&[
        ("HERALD_XMTP_BATCH_SIZE", &BATCH.to_string()),
        ("HERALD_XMTP_LEASE_SECS", "5"),
        ("HERALD_XMTP_GOVERNOR", "on"),
        ("HERALD_XMTP_RATE_BURST", "40"),
        ("HERALD_XMTP_RATE_PER_MINUTE", "1200"),
    ]);
    let log = dir.path().join("herald.log");
    let inboxes = inboxes(&node.url(), SUBSCRIBERS).await;
    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = serve.base.as_str();
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();
    let cast = start_broadcast(&http, b, &addrs, "lock-proof announcement").await;
    cast.wait_part_delivered(&http, b, 2 * BATCH as i64, SUBSCRIBERS)
        .await;

    // Take the file's write lock from this process, as a stray tool or backup would.
    let mut holder = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("takes the write lock");
    let before = counts_now(&http, b, &cast).await;
    for _ in 0..2 {
        let (status, body, took) = timed(
            http.post(format!("{b}/v1/channels"))
                .bearer_auth(&cast.key)
                .json(&json!({"name": "while locked"})),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "database_unavailable", "{body}");
        assert!(
            took < PROMPT,
            "create took {took:?} while the file was locked"
        );
    }
    // Nothing settled while the lock was held: no write got through.
    assert_eq!(counts_now(&http, b, &cast).await, before);
    assert!(child.alive(), "herald exited while the file was locked");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);

    let done = cast.wait_completed(&http, b, RECOVERY).await;
    assert!(child.alive(), "herald was restarted or died");
    child.kill();
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["counts"]["failed"], json!(0), "{done}");
    assert!(!panicked(&log), "herald panicked; see its log");
    let raw = assert_each_inbox_once(&inboxes, &cast.sender).await;
    assert!(
        raw <= SUBSCRIBERS + BATCH,
        "{raw} publishes for {SUBSCRIBERS} deliveries"
    );
    node.shutdown().await;
}

/// The broadcast's delivered and pending counts (reads still work under a write lock: WAL).
async fn counts_now(
    http: &reqwest::Client,
    b: &str,
    cast: &crate::crash::Broadcast,
) -> (serde_json::Value, serde_json::Value) {
    let r = send(
        http.get(format!("{b}/v1/announcements/{}", cast.id))
            .bearer_auth(&cast.key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (
        r.body["counts"]["delivered"].clone(),
        r.body["counts"]["pending"].clone(),
    )
}

/// In the Postgres pass: a store on a new database with `connections` pooled connections,
/// and the database's URL.
async fn postgres_store(connections: u32) -> Option<(herald::store::PgStore, String)> {
    let server = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let Some(server) = server else {
        eprintln!("outage: Postgres-only; runs in the Postgres pass (make test-pg)");
        return None;
    };
    let url = fresh_postgres_database(&server).await;
    let store = herald::store::PgStore::connect(&url, connections)
        .await
        .unwrap();
    Some((store, url))
}

/// A transaction left open on a pooled connection cannot hold its locks for good: every
/// session herald opens carries `idle_in_transaction_session_timeout`.
#[tokio::test]
async fn postgres_sessions_end_an_abandoned_transaction() {
    let Some((store, _)) = postgres_store(2).await else {
        return;
    };
    let timeout: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(timeout, "1min");
}

/// A write cancelled at any point (a client hanging up, a worker giving a round up) leaves no
/// transaction open on its pooled connection: with one connection, whatever runs next would
/// run inside it and hold its locks.
#[tokio::test]
async fn a_write_cancelled_at_any_point_leaves_no_transaction_open() {
    use herald::store::Store as _;
    let Some((store, url)) = postgres_store(1).await else {
        return;
    };
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for attempt in 0..400u64 {
        let tenant = herald::store::NewTenant {
            id: herald::domain::TenantId::generate(),
            name: format!("t{attempt}"),
            key_hash: format!("h{attempt}"),
        };
        let cut = std::time::Duration::from_micros(attempt % 100 * 10);
        let _ = tokio::time::timeout(cut, store.create_tenant(&tenant)).await;
        // The next statement on the pool's one connection, then a look from outside: it must
        // not be left `idle in transaction`.
        sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'idle in transaction'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        assert_eq!(
            open, 0,
            "attempt {attempt} (cancelled after {cut:?}): the connection came back inside a transaction"
        );
    }
}
