//! The SQLite file write-locked mid-broadcast: 503s while locked, each subscriber served once.

use super::*;

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
