//! Postgres stopped for 15 s mid-broadcast: prompt 503s while down, each subscriber served once.

use super::*;

const SUBSCRIBERS: usize = 300;
const OUTAGE: Duration = Duration::from_secs(15);
/// Longest acceptable wait for an answer while the database is down (the pool's acquire
/// timeout is 5 s; anything near the 30 s request timeout would be a hang).
const PROMPT: Duration = Duration::from_secs(8);

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
    let mut run = underway(
        cluster.url(),
        dir.path(),
        node.url(),
        ("60", "3000"),
        SUBSCRIBERS,
        "outage-proof announcement",
    )
    .await;
    let (http, b, cast) = (&run.http, run.base.as_str(), &run.cast);

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
    assert!(run.child.alive(), "herald exited during the outage");

    cluster.start();
    let back = Instant::now();
    let done = cast.wait_completed(http, b, RECOVERY).await;
    eprintln!(
        "outage: completed {:?} after Postgres returned",
        back.elapsed()
    );
    let (status, _, _) = timed(http.get(format!("{b}/readyz"))).await;
    assert_eq!(status, StatusCode::OK);
    run.assert_completed_once(&done).await;
    node.shutdown().await;
}
