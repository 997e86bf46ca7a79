//! (e) restart from durable state, (h) publish failures and restarts neither fork nor duplicate.

use std::sync::Arc;

use super::counting;
use super::sdk::{random_key, Sdk};
use super::{node, transport};
use serde_json::json;
use xmtp_client::{Client, Store, Wallet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_rebuilt_from_durable_state_sends_again() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let wallet = Wallet::generate();
    let (inbox, installation) = {
        let store: Arc<dyn Store> = Arc::new(xmtp_client::RedbStore::open(&path).unwrap());
        let herald = Client::open(&wallet, transport(&node), store)
            .await
            .unwrap();
        herald
            .send_text(&bob.inbox_id, "before restart", "k-1")
            .await
            .unwrap();
        (herald.inbox_id().to_owned(), herald.installation_id())
    };
    let dm = sdk.find_dm(&bob, &inbox).await.unwrap();
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "while you were away"}),
    )
    .await;

    let store: Arc<dyn Store> = Arc::new(xmtp_client::RedbStore::open(&path).unwrap());
    let herald = Client::open(&wallet, transport(&node), store)
        .await
        .unwrap();
    assert_eq!(
        herald.installation_id(),
        installation,
        "same installation, not a new one"
    );
    herald
        .send_text(&bob.inbox_id, "after restart", "k-2")
        .await
        .unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec![
            "before restart".to_owned(),
            "while you were away".to_owned(),
            "after restart".to_owned()
        ]
    );
    let list = sdk.call("list", json!({"name": "bob"})).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "no second DM after the restart: {list}"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h_failed_publishes_and_restarts_neither_fork_nor_duplicate() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let wallet = Wallet::generate();
    let open = |t: counting::Counting| {
        let store: Arc<dyn Store> = Arc::new(xmtp_client::RedbStore::open(&path).unwrap());
        let wallet = wallet.clone();
        async move { Client::open(&wallet, Arc::new(t), store).await.unwrap() }
    };

    // 1. The commit is published but the welcome call fails; the process "crashes".
    let t = counting::Counting::new(transport(&node));
    let herald = open(t.clone()).await;
    t.fail_next("SendWelcomeMessages", 1);
    let err = herald
        .send_text(&bob.inbox_id, "one", "k-1")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    drop(herald);

    // 2. Restarted: the commit publish fails, then the DM is recreated cleanly, then the
    //    message publish fails after its ratchet step was persisted.
    let t = counting::Counting::new(transport(&node));
    let herald = open(t.clone()).await;
    t.fail_next("SendGroupMessages", 1);
    assert!(
        herald.send_text(&bob.inbox_id, "one", "k-1").await.is_err(),
        "commit publish fails"
    );
    herald
        .find_or_create_dm(&bob.inbox_id)
        .await
        .expect("DM created on retry");
    t.fail_next("SendGroupMessages", 1);
    assert!(
        herald.send_text(&bob.inbox_id, "one", "k-1").await.is_err(),
        "message publish fails"
    );
    drop(herald);

    // 3. Restarted again: the retry goes through exactly once.
    let herald = open(counting::Counting::new(transport(&node))).await;
    herald.send_text(&bob.inbox_id, "one", "k-1").await.unwrap();
    herald.send_text(&bob.inbox_id, "two", "k-2").await.unwrap();
    let list = sdk.call("list", json!({"name": "bob"})).await;
    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("DM listed");
    let list_after = sdk.call("list", json!({"name": "bob"})).await;
    assert_eq!(
        list_after.as_array().unwrap().len(),
        1,
        "one DM, no fork: {list} {list_after}"
    );
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec!["one".to_owned(), "two".to_owned()]
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

/// A store whose next write fails (the database was unreachable for one write).
#[derive(Default)]
struct FailNextWrite {
    inner: xmtp_client::MemoryStore,
    fail: std::sync::atomic::AtomicBool,
    /// Non-empty writes that succeeded.
    writes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Store for FailNextWrite {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, xmtp_client::storage::StoreError> {
        self.inner.get(key).await
    }
    async fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, xmtp_client::storage::StoreError> {
        self.inner.scan_prefix(prefix).await
    }
    async fn write_batch(
        &self,
        batch: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), xmtp_client::storage::StoreError> {
        if self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(xmtp_client::storage::StoreError::Backend(
                "injected write failure".into(),
            ));
        }
        self.inner.write_batch(batch).await?;
        if !batch.is_empty() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A first message writes its new DM together with the advanced ratchet, in one write; when
/// that write fails nothing was published, the DM is not kept half-made, and the retry
/// creates a fresh one the SDK reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h_a_failed_first_write_keeps_no_dm_and_the_retry_is_read() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let store = Arc::new(FailNextWrite::default());
    let herald = Client::open(&Wallet::generate(), transport(&node), store.clone())
        .await
        .unwrap();

    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(herald
        .send_text(&bob.inbox_id, "hello", "k-1")
        .await
        .is_err());
    assert_eq!(
        herald.dm_group_id(&bob.inbox_id).await,
        None,
        "a DM whose write failed is not used"
    );
    assert!(store.inner.scan_prefix(b"dm/").await.unwrap().is_empty());

    let before = store.writes.load(std::sync::atomic::Ordering::SeqCst);
    herald
        .send_text(&bob.inbox_id, "hello", "k-1")
        .await
        .unwrap();
    assert_eq!(
        store.writes.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "the new DM and its first ratchet step in one write"
    );
    let gid = herald.dm_group_id(&bob.inbox_id).await.expect("DM ready");
    let stored = store.inner.scan_prefix(b"dm/").await.unwrap();
    assert_eq!(stored.len(), 1, "the retry's DM is written");
    assert!(String::from_utf8_lossy(&stored[0].1).contains(&hex::encode(&gid)));
    let dm = sdk.find_dm(&bob, herald.inbox_id()).await.unwrap();
    assert_eq!(sdk.texts(&bob, &dm).await, vec!["hello".to_owned()]);
    sdk.shutdown().await;
    node.shutdown().await;
}
