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
    let mut run = underway(
        db.clone(),
        dir.path(),
        node.url(),
        ("40", "1200"),
        SUBSCRIBERS,
        "lock-proof announcement",
    )
    .await;
    let (http, b, cast) = (&run.http, run.base.as_str(), &run.cast);

    // Take the file's write lock from this process, as a stray tool or backup would.
    let mut holder = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("takes the write lock");
    let before = counts_now(http, b, cast).await;
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
    assert_eq!(counts_now(http, b, cast).await, before);
    assert!(run.child.alive(), "herald exited while the file was locked");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);

    let done = cast.wait_completed(http, b, RECOVERY).await;
    run.assert_completed_once(&done).await;
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
