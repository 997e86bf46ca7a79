//! Replicas on one database: only the lease holder commits; handover on stop and on expiry.

use super::*;

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
