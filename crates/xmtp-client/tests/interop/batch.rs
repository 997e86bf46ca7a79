//! (g) the pipeline batch API: one key-package round, batched welcomes and sends.

use std::sync::Arc;

use super::counting;
use super::sdk::{random_key, Sdk};
use super::{node, transport};
use xmtp_client::{Client, MemoryStore, Wallet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_batch_creates_dms_with_one_key_package_round_and_sends_in_one_call() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let mut peers = Vec::new();
    for i in 0..3 {
        let (_, key) = random_key();
        peers.push(sdk.create(&format!("p{i}"), &key, &node.url()).await);
    }
    // Peer 0 has a second installation: 4 welcomes in total.
    let (_, key) = random_key();
    let extra = sdk.create("p3", &key, &node.url()).await;
    let p0b = sdk.create("p0b", &key, &node.url()).await;
    assert_eq!(extra.inbox_id, p0b.inbox_id);
    peers.push(extra);

    let counting = counting::Counting::new(transport(&node));
    let herald = Client::open(
        &Wallet::generate(),
        Arc::new(counting.clone()),
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap();
    counting.reset();
    let inboxes: Vec<String> = peers.iter().map(|p| p.inbox_id.clone()).collect();
    let created = herald.create_dms(&inboxes).await.unwrap();
    assert!(created.values().all(|r| r.is_ok()), "{created:?}");
    assert_eq!(
        counting.count("FetchKeyPackages"),
        1,
        "one key-package round for all DMs"
    );
    assert_eq!(
        counting.count("SendWelcomeMessages"),
        1,
        "5 welcomes fit one batch"
    );
    assert_eq!(
        counting.count("SendGroupMessages"),
        1,
        "all commits in one call"
    );

    counting.reset();
    let items: Vec<_> = inboxes
        .iter()
        .flat_map(|inbox| {
            (0..2).map(move |n| xmtp_client::OutgoingText {
                peer_inbox_id: inbox.clone(),
                content: format!("batch message {n}").into(),
                idempotency_key: format!("{inbox}-{n}"),
            })
        })
        .collect();
    let results = herald.send_batch(items).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        counting.count("SendGroupMessages"),
        1,
        "8 messages in one call"
    );

    let want = vec!["batch message 0".to_owned(), "batch message 1".to_owned()];
    for p in peers.iter().chain(std::iter::once(&p0b)) {
        let dm = sdk
            .find_dm(p, herald.inbox_id())
            .await
            .unwrap_or_else(|| panic!("{} lists the DM", p.name));
        assert_eq!(sdk.texts(p, &dm).await, want, "{}", p.name);
    }
    sdk.shutdown().await;
    node.shutdown().await;
}

/// DMs built ahead ([`Client::prebuild_dms`], what the delivery pipeline does for its next
/// batch) are created without another identity or key-package round and read by the SDK; a
/// creation whose commits the node refused leaves no group state behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_dms_built_ahead_are_only_published_and_a_refused_creation_writes_nothing() {
    use xmtp_client::storage::Store as _;

    let node = node().await;
    let mut sdk = Sdk::start().await;
    let mut peers = Vec::new();
    for i in 0..3 {
        let (_, key) = random_key();
        peers.push(sdk.create(&format!("q{i}"), &key, &node.url()).await);
    }
    let counting = counting::Counting::new(transport(&node));
    let store = Arc::new(MemoryStore::new());
    let herald = Client::open(
        &Wallet::generate(),
        Arc::new(counting.clone()),
        store.clone(),
    )
    .await
    .unwrap();
    let inboxes: Vec<String> = peers.iter().map(|p| p.inbox_id.clone()).collect();

    // Peer 0's creation is refused at the commit: nothing of its DM may be written later.
    counting.fail_next("SendGroupMessages", 1);
    assert!(herald.create_dms(&inboxes[..1]).await.is_err());

    assert_eq!(herald.prebuild_dms(&inboxes).await.unwrap(), 3);
    assert_eq!(
        herald.prebuild_dms(&inboxes).await.unwrap(),
        0,
        "built DMs are not built again"
    );
    counting.reset();
    let items: Vec<_> = inboxes
        .iter()
        .map(|inbox| xmtp_client::OutgoingText {
            peer_inbox_id: inbox.clone(),
            content: "built ahead".into(),
            idempotency_key: format!("{inbox}-ahead"),
        })
        .collect();
    let results = herald.send_batch(items).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(
        counting.count("FetchKeyPackages"),
        0,
        "key packages fetched ahead"
    );
    assert_eq!(
        counting.count("GetIdentityUpdates"),
        0,
        "identities verified ahead"
    );

    // Exactly the three DMs' group states are stored (the refused one left none).
    let bundles = store.scan_prefix(b"mls/g/").await.unwrap();
    assert_eq!(
        bundles.len(),
        3,
        "{:?}",
        bundles
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );

    for p in &peers {
        let dm = sdk
            .find_dm(p, herald.inbox_id())
            .await
            .unwrap_or_else(|| panic!("{} lists the DM", p.name));
        assert_eq!(
            sdk.texts(p, &dm).await,
            vec!["built ahead".to_owned()],
            "{}",
            p.name
        );
    }
    sdk.shutdown().await;
    node.shutdown().await;
}
