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
