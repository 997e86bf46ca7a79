//! End to end against anvil: a trigger created over REST, a Swap emitted on chain, and the
//! watcher inside `herald serve` turning it into exactly one announcement with delivery rows,
//! only after the trigger's confirmations; and two replicas sharing one database, of which
//! only the lease holder commits.
//!
//! Waits poll the observable state with generous deadlines; no sleep stands in for an assertion.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::chain_harness::{Chain, SWAP};
use crate::helpers::{addresses, TestApp, ADMIN_TOKEN};
use herald::app::App;
use herald::config::{Config, DatabaseUrl};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// Deadline for anything the watcher must do (a loaded 2-core machine is slow).
const DEADLINE: Duration = Duration::from_secs(90);

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn app_on(chain: &Chain) -> TestApp {
    let config = chain.config();
    TestApp::spawn_with(move |c| c.chains = vec![config]).await
}

fn trigger(chain: &Chain, confirmations: u64) -> Value {
    json!({
        "chain_id": crate::chain_harness::CHAIN_ID,
        "address": chain.contract.to_string(),
        "event": SWAP,
        "condition": {"arg": "amount0", "op": ">=", "value": "1000000000000000000"},
        "template": "Swap {{ args.amount0 | units(18) }} / {{ args.amount1 }} at block {{ block.number }} on {{ chain.name }}",
        "confirmations": confirmations
    })
}

/// Texts of the channel's announcements, oldest first.
async fn announcements(app: &TestApp, channel: &str) -> Vec<String> {
    app.raw_strings(&format!(
        "SELECT text FROM announcements WHERE channel_id = '{channel}' ORDER BY id"
    ))
    .await
}

/// Waits until the chain's watcher has committed its starting cursor: a trigger created after
/// that starts at the block after the cursor, so every later swap is in its range.
async fn watcher_started(app: &TestApp) {
    eventually("the watcher's first cursor", || async {
        let rows = app
            .raw_strings("SELECT CAST(block_number AS TEXT) FROM chain_cursors")
            .await;
        (!rows.is_empty()).then_some(())
    })
    .await
}

/// Waits until the watcher has scanned the trigger up to `block`.
async fn scanned(app: &TestApp, key: &str, trigger_path: &str, block: u64) {
    eventually(&format!("scan to block {block}"), || async {
        let t = app.get(trigger_path, key).await;
        t.body["scanned_to"]
            .as_u64()
            .filter(|s| *s >= block)
            .map(|_| ())
    })
    .await
}

#[tokio::test]
async fn a_swap_becomes_one_announcement_with_deliveries_after_confirmations() {
    let chain = Chain::start().await;
    let app = app_on(&chain).await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "whale swaps").await;
    let subscribers = addresses(7, 3);
    app.subscribe(&key, &ch, &subscribers).await;
    watcher_started(&app).await;

    let created = app
        .post(
            &format!("/v1/channels/{ch}/triggers"),
            &key,
            trigger(&chain, 3),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!(
        "/v1/channels/{ch}/triggers/{}",
        created.body["id"].as_str().unwrap()
    );

    let (_, small_block) = chain.swap(5, -5).await; // filtered out by the condition
    let (_, block) = chain.swap(1_500_000_000_000_000_000, -2_500_000_000).await;
    assert!(small_block < block);
    // Two confirmations on top of the swap's block: scanned up to head - 3, nothing announced.
    chain.mine(2).await;
    scanned(&app, &key, &path, block - 1).await;
    assert!(
        announcements(&app, &ch).await.is_empty(),
        "announced before 3 confirmations"
    );

    chain.mine(1).await;
    let texts = eventually("the announcement", || async {
        let texts = announcements(&app, &ch).await;
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(
        texts,
        vec![format!("Swap 1.5 / -2500000000 at block {block} on anvil")]
    );
    let ann = app
        .raw_strings(&format!(
            "SELECT id FROM announcements WHERE channel_id = '{ch}'"
        ))
        .await
        .remove(0);
    let mut delivered = app
        .raw_strings(&format!(
            "SELECT address FROM deliveries WHERE announcement_id = '{ann}' AND status = 'pending'"
        ))
        .await;
    delivered.sort();
    assert_eq!(
        delivered, subscribers,
        "one pending delivery per subscriber"
    );
    let fetched = app.get(&format!("/v1/announcements/{ann}"), &key).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body["counts"]["total"], 3);
    // The listing shows the trigger's last match (the console's "last match" column).
    let listed = app.get(&format!("/v1/channels/{ch}/triggers"), &key).await;
    assert_eq!(
        listed.body["items"][0]["last_match_block"], block,
        "{}",
        listed.body
    );

    // Later blocks never announce it again.
    chain.mine(5).await;
    scanned(&app, &key, &path, block + 2).await;
    assert_eq!(announcements(&app, &ch).await.len(), 1);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "herald_chain_cursor_block",
        "herald_chain_head_block",
        "herald_chain_lease_held",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

async fn epochs(app: &TestApp) -> Vec<String> {
    app.raw_strings("SELECT CAST(epoch AS TEXT) FROM chain_leases")
        .await
}

/// Another herald process on `app`'s database, watching `chain`.
struct Replica {
    stop: CancellationToken,
    running: tokio::task::JoinHandle<()>,
    base: String,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Shuts the replica down and waits until its workers (and lease release) are done.
    async fn stop(self) {
        self.stop.cancel();
        self.running.await.unwrap();
    }
}

async fn replica_of(app: &TestApp, chain: &Chain) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = DatabaseUrl::new(app.database_url.clone());
    config.data_dir = dir.path().to_owned();
    config.master_key = Some(SecretString::from(app.kek.to_hex()));
    config.admin_token = Some(SecretString::from(ADMIN_TOKEN.to_owned()));
    config.db_max_connections = 5;
    config.chains = vec![chain.config()];
    // Each replica runs its own embedded XMTP node; port 0 keeps them from colliding on 5556,
    // and no delivery workers are needed to watch a chain.
    config.xmtp.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.xmtp.embedded_with_postgres = true;
    config.xmtp.workers = 0;
    let replica = App::build(&config).await.expect("replica builds");
    let stop = replica.shutdown_token();
    let base = format!("http://{}", replica.local_addr());
    let running = tokio::spawn(async move { replica.run().await.expect("replica runs") });
    Replica {
        stop,
        running,
        base,
        _dir: dir,
    }
}

#[tokio::test]
async fn two_replicas_on_one_database_announce_once_and_hand_over() {
    let chain = Chain::start().await;
    // The test's own app watches nothing; two replicas on its database watch the chain.
    let app = TestApp::spawn().await;
    let first = replica_of(&app, &chain).await;
    // Alone, the first replica takes the lease and commits its starting cursor.
    watcher_started(&app).await;
    let second = replica_of(&app, &chain).await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "swaps").await;
    app.subscribe(&key, &ch, &addresses(8, 2)).await;
    // Only the replicas have the chain configured, so the trigger is created through one.
    let created = crate::helpers::send(
        app.client
            .post(format!("{}/v1/channels/{ch}/triggers", second.base))
            .bearer_auth(&key)
            .json(&trigger(&chain, 1)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!(
        "/v1/channels/{ch}/triggers/{}",
        created.body["id"].as_str().unwrap()
    );
    let holders = app.raw_strings("SELECT holder FROM chain_leases").await;
    assert_eq!(holders.len(), 1, "one lease row per chain");

    let (_, b1) = chain.swap(2_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the first announcement", || async {
        (!announcements(&app, &ch).await.is_empty()).then_some(())
    })
    .await;
    // The second replica never got the lease (epoch 1 is the first replica's), so fencing kept
    // it from committing anything.
    assert_eq!(epochs(&app).await, vec!["1".to_owned()]);

    // Stop the lease holder: its shutdown releases the lease and the second replica takes
    // over; the next swap is announced once and the first one never again.
    first.stop().await;
    let (_, b2) = chain.swap(3_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the second announcement", || async {
        (announcements(&app, &ch).await.len() >= 2).then_some(())
    })
    .await;
    chain.mine(3).await;
    scanned(&app, &key, &path, b2 + 2).await;
    assert_eq!(
        announcements(&app, &ch).await,
        vec![
            format!("Swap 2 / -1 at block {b1} on anvil"),
            format!("Swap 3 / -1 at block {b2} on anvil"),
        ],
        "each swap exactly once"
    );
    assert_eq!(epochs(&app).await, vec!["2".to_owned()], "one handover");
    second.stop().await;
}

/// The chain's committed cursor, once there is one.
async fn cursor(app: &TestApp) -> Option<u64> {
    app.raw_strings("SELECT CAST(block_number AS TEXT) FROM chain_cursors")
        .await
        .first()
        .map(|b| b.parse().unwrap())
}

#[tokio::test]
async fn paused_triggers_skip_events_and_edits_apply_to_later_ones() {
    let chain = Chain::start().await;
    let app = app_on(&chain).await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "swaps").await;
    app.subscribe(&key, &ch, &addresses(9, 1)).await;
    watcher_started(&app).await;
    let created = app
        .post(
            &format!("/v1/channels/{ch}/triggers"),
            &key,
            trigger(&chain, 1),
        )
        .await;
    let path = format!(
        "/v1/channels/{ch}/triggers/{}",
        created.body["id"].as_str().unwrap()
    );
    let patch = |body: Value| app.call(reqwest::Method::PATCH, &path, Some(&key), Some(body));
    assert_eq!(patch(json!({"paused": true})).await.status, StatusCode::OK);

    // While paused: the chain moves past the swap, nothing is announced.
    let (_, skipped) = chain.swap(4_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the cursor to pass the paused swap", || async {
        cursor(&app).await.filter(|c| *c >= skipped)
    })
    .await;

    // Resumed with a new template: live from here, rendered with the edit.
    let edited =
        patch(json!({"paused": false, "template": "Edited {{ args.amount0 | units(18) }}"})).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["revision"], 2);
    let (_, live) = chain.swap(5_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the live announcement", || async {
        (!announcements(&app, &ch).await.is_empty()).then_some(())
    })
    .await;
    chain.mine(2).await;
    scanned(&app, &key, &path, live + 1).await;
    assert_eq!(announcements(&app, &ch).await, vec!["Edited 5".to_owned()]);
}

#[tokio::test]
async fn a_crashed_holders_lease_is_taken_over_only_after_it_expires() {
    let chain = Chain::start().await;
    let app = TestApp::spawn().await;
    // A holder that "crashed": it took the lease and will never renew or release it.
    let ttl = Duration::from_secs(3);
    let taken = tokio::time::Instant::now();
    app.store
        .triggers()
        .acquire_chain_lease(crate::chain_harness::CHAIN_ID, "crashed", ttl)
        .await
        .unwrap()
        .expect("a free lease");
    let replica = replica_of(&app, &chain).await;
    // The replica commits its first cursor only once it holds the lease, i.e. after expiry.
    watcher_started(&app).await;
    assert!(
        taken.elapsed() >= ttl,
        "the replica committed after {:?}, before the crashed holder's lease expired",
        taken.elapsed()
    );
    let holders = app.raw_strings("SELECT holder FROM chain_leases").await;
    assert_ne!(holders, vec!["crashed".to_owned()]);
    replica.stop().await;
}

/// A trigger's announcements wait, like REST ones, while its tenant's unfinished announcements
/// have `max_pending_deliveries` recipients: the event is kept (not lost, not announced twice)
/// and announced once the deliveries drain.
#[tokio::test]
async fn trigger_announcements_wait_for_the_pending_deliveries_quota() {
    let chain = Chain::start().await;
    let config = chain.config();
    let app = TestApp::spawn_with(move |c| {
        c.chains = vec![config];
        c.quotas.max_pending_deliveries = 3;
    })
    .await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "whale swaps").await;
    app.subscribe(&key, &ch, &addresses(7, 1)).await;
    // Another channel of the tenant fills the quota (no delivery workers in these tests).
    let flood = app.channel(&key, "flood").await;
    app.subscribe(&key, &flood, &addresses(8, 3)).await;
    let r = app
        .post_announcement(&key, &flood, json!({"text": "flood"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let refused = app
        .post_announcement(&key, &ch, json!({"text": "by REST"}))
        .await;
    assert_eq!(refused.code(), "quota_exceeded", "{}", refused.body);
    watcher_started(&app).await;

    let created = app
        .post(
            &format!("/v1/channels/{ch}/triggers"),
            &key,
            trigger(&chain, 1),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!(
        "/v1/channels/{ch}/triggers/{}",
        created.body["id"].as_str().unwrap()
    );
    let (_, block) = chain.swap(2_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    scanned(&app, &key, &path, block).await;
    assert!(
        announcements(&app, &ch).await.is_empty(),
        "announced past the quota"
    );
    let kept = app
        .raw_strings("SELECT text FROM chain_events WHERE announcement_id IS NULL")
        .await;
    assert_eq!(kept.len(), 1, "the matched event is kept: {kept:?}");

    // The flood drains (its channel is deleted: deliveries skipped): the event is announced,
    // once.
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/channels/{flood}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let texts = eventually("the deferred announcement", || async {
        let texts = announcements(&app, &ch).await;
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(
        texts,
        vec![format!("Swap 2 / -1 at block {block} on anvil")]
    );
    chain.mine(3).await;
    scanned(&app, &key, &path, block + 2).await;
    assert_eq!(announcements(&app, &ch).await.len(), 1, "announced once");
    let metrics = herald::telemetry::metrics_handle().render();
    assert!(
        metrics.contains("herald_chain_events_deferred_total"),
        "{metrics}"
    );
}
