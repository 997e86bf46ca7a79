//! Clean shutdown: SIGTERM mid-broadcast gives the channel's sender lease back, so a restart
//! resumes at once instead of after the lease's expiry; the log tells when an announcement
//! started sending and when it completed.

use std::time::{Duration, Instant};

use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::crash::{assert_each_inbox_once, counts, inboxes, start_broadcast, Serve};
use crate::helpers::*;

const SUBSCRIBERS: usize = 300;
const BATCH: usize = 10;
/// Far longer than the restart may take: a lease left behind would stall the restart this long.
const LEASE_SECS: &str = "60";

/// Delivered count read from the database itself (the server is down).
async fn delivered_in_db(url: &str, id: &str) -> i64 {
    use sqlx::Connection as _;
    let sql = "SELECT COUNT(*) FROM deliveries WHERE announcement_id = $1 AND status = 'delivered'";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

async fn delivered(http: &reqwest::Client, base: &str, key: &str, id: &str) -> i64 {
    counts(http, base, key, id).await["counts"]["delivered"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_broadcast_releases_the_lease_so_a_restart_resumes_at_once() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.path().join("h.db").display()),
    };
    let serve = Serve::new(database_url.clone(), dir.path(), node.url()).with(&[
        ("HERALD_XMTP_BATCH_SIZE", &BATCH.to_string()),
        ("HERALD_XMTP_LEASE_SECS", LEASE_SECS),
        ("HERALD_XMTP_WORKERS", "1"),
    ]);
    let log = dir.path().join("herald.log");
    let inboxes = inboxes(&node.url(), SUBSCRIBERS).await;
    let addrs: Vec<String> = inboxes.iter().map(|c| c.address().to_owned()).collect();

    let mut child = serve.spawn(&log);
    serve.wait_ready().await;
    let http = reqwest::Client::new();
    let b = &serve.base;
    let cast = start_broadcast(&http, b, &addrs, "survives a clean restart").await;
    cast.wait_part_delivered(&http, b, 2 * BATCH as i64, SUBSCRIBERS)
        .await;
    assert!(child.terminate(), "SIGTERM ends herald cleanly");
    let at_stop = delivered_in_db(&database_url, &cast.id).await;
    assert!(
        (at_stop as usize) < SUBSCRIBERS,
        "stopped mid-broadcast ({at_stop} delivered)"
    );

    let _child = serve.spawn(&log);
    serve.wait_ready().await;
    let ready = Instant::now();
    let http = reqwest::Client::new();
    // Event-based: the first delivery after the restart is awaited (polling the counts);
    // a lease left behind would hold it back for LEASE_SECS.
    loop {
        if delivered(&http, b, &cast.key, &cast.id).await > at_stop {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "nothing moved after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed = ready.elapsed();
    assert!(
        resumed < Duration::from_secs(2),
        "first delivery {resumed:?} after the restart was ready"
    );
    let done = cast
        .wait_completed(&http, b, Duration::from_secs(300))
        .await;
    assert_eq!(done["counts"]["delivered"], json!(SUBSCRIBERS), "{done}");
    assert_eq!(done["eta_stale"], json!(false), "{done}");
    assert_each_inbox_once(&inboxes, &cast.sender).await;
    // Deliveries show the sends attempted: one for each delivered at the first try.
    let page = send(
        http.get(format!(
            "{b}/v1/announcements/{}/deliveries?limit=20",
            cast.id
        ))
        .bearer_auth(&cast.key),
    )
    .await;
    let items = page.body["items"].as_array().unwrap();
    assert!(
        !items.is_empty()
            && items
                .iter()
                .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{}",
        page.body
    );

    let text = without_ansi(&std::fs::read_to_string(&log).unwrap());
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle) && l.contains(&cast.id))
            .unwrap_or_else(|| panic!("no {needle:?} line for {} in:\n{text}", cast.id))
            .to_owned()
    };
    line("announcement started sending");
    let completed = line("announcement completed");
    assert!(
        completed.contains(&format!("delivered={SUBSCRIBERS}"))
            && completed.contains("duration_ms="),
        "{completed}"
    );
    node.shutdown().await;
}

/// The text log without its colour escapes (`ESC [ … m`).
fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for end in chars.by_ref() {
                if end == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
