//! Interop proofs: herald's client sends, the official XMTP node SDK 6.0.0 (libxmtp 1.10)
//! receives, through herald's devnode started in-process on a free port.
//!
//! Needs `interop/node_modules` (run `interop/setup.sh`); the tests fail, not skip, without it.

mod counting;
mod sdk;

use std::sync::Arc;

use serde_json::json;
use xmtp_client::{Client, GrpcTransport, MemoryStore, Store, Transport, Wallet};
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle};

use sdk::{random_key, Sdk};

async fn node() -> DevNodeHandle {
    DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts")
}

fn transport(node: &DevNodeHandle) -> Arc<dyn Transport> {
    Arc::new(GrpcTransport::connect_lazy(&node.url()).unwrap())
}

async fn herald(node: &DevNodeHandle, store: Arc<dyn Store>) -> (Wallet, Client) {
    let wallet = Wallet::generate();
    let client = Client::open(&wallet, transport(node), store)
        .await
        .expect("herald registers");
    (wallet, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sdk_lists_the_dm_by_sync_and_stream_and_reads_the_exact_text() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    sdk.call("streamStart", json!({"name": "bob"})).await;
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;

    let text = "Block 19000001: transfer of 5 ETH ✓ — herald";
    herald
        .send_text(&bob.inbox_id, text, "announce-1")
        .await
        .expect("send");

    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("SDK lists the DM after sync");
    assert_eq!(sdk.texts(&bob, &dm).await, vec![text.to_owned()]);
    let herald_inbox = herald.inbox_id().to_owned();
    let streamed = sdk
        .wait_streamed(&bob, |s| {
            let conv = s["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["peerInboxId"] == json!(herald_inbox));
            let msg = s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["text"] == json!(text));
            conv && msg
        })
        .await;
    assert!(
        streamed["errors"].as_array().unwrap().is_empty(),
        "stream errors: {streamed}"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_sdk_replies_and_herald_reads_the_reply() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;
    herald
        .send_text(&bob.inbox_id, "ping", "k-ping")
        .await
        .unwrap();

    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("DM listed");
    // libxmtp sends a key-update commit before its first message in a joined group.
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "pong from the SDK"}),
    )
    .await;

    let replies = herald.sync_dm(&bob.inbox_id).await.expect("sync");
    let texts: Vec<_> = replies.iter().filter_map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["pong from the SDK".to_owned()]);
    assert_eq!(replies[0].sender_inbox_id, bob.inbox_id);

    // Herald stays in the current epoch after the peer's commit: its next message is read.
    herald
        .send_text(&bob.inbox_id, "after the key update", "k-2")
        .await
        .unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await.last().unwrap(),
        "after the key update"
    );

    // A reply that arrives while herald is sending is kept for the next sync_dm.
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "second reply"}),
    )
    .await;
    herald
        .send_text(&bob.inbox_id, "third", "k-3")
        .await
        .unwrap();
    let later: Vec<_> = herald
        .sync_dm(&bob.inbox_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(later, vec!["second reply".to_owned()]);
    assert!(
        herald.sync_dm(&bob.inbox_id).await.unwrap().is_empty(),
        "handed out once"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_recipient_with_three_installations_all_read() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, key) = random_key();
    let bobs = [
        sdk.create("bob1", &key, &node.url()).await,
        sdk.create("bob2", &key, &node.url()).await,
        sdk.create("bob3", &key, &node.url()).await,
    ];
    assert!(
        bobs.iter().all(|b| b.inbox_id == bobs[0].inbox_id),
        "one inbox, three installations"
    );
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;
    herald
        .send_text(&bobs[0].inbox_id, "to every device", "k-all")
        .await
        .unwrap();
    for b in &bobs {
        let dm = sdk
            .find_dm(b, herald.inbox_id())
            .await
            .unwrap_or_else(|| panic!("{} lists the DM", b.name));
        assert_eq!(
            sdk.texts(b, &dm).await,
            vec!["to every device".to_owned()],
            "{}",
            b.name
        );
    }
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_installation_added_after_the_dm_reads_the_next_message() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, key) = random_key();
    let bobs = [
        sdk.create("bob1", &key, &node.url()).await,
        sdk.create("bob2", &key, &node.url()).await,
        sdk.create("bob3", &key, &node.url()).await,
    ];
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;
    herald
        .send_text(&bobs[0].inbox_id, "first", "k-1")
        .await
        .unwrap();
    let dm1 = sdk.find_dm(&bobs[0], herald.inbox_id()).await.unwrap();
    assert_eq!(sdk.texts(&bobs[0], &dm1).await, vec!["first".to_owned()]);

    let bob4 = sdk.create("bob4", &key, &node.url()).await;
    herald
        .send_text(&bob4.inbox_id, "second", "k-2")
        .await
        .unwrap();
    let dm4 = sdk
        .find_dm(&bob4, herald.inbox_id())
        .await
        .expect("the 4th installation lists the DM");
    assert!(sdk.texts(&bob4, &dm4).await.contains(&"second".to_owned()));
    // The earlier installations still read along after the membership commit.
    assert_eq!(
        sdk.texts(&bobs[0], &dm1).await,
        vec!["first".to_owned(), "second".to_owned()]
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

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
async fn f_same_idempotency_key_shows_once() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-42")
        .await
        .unwrap();
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-42")
        .await
        .unwrap();
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-43")
        .await
        .unwrap();
    let dm = sdk.find_dm(&bob, herald.inbox_id()).await.unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec!["exactly once".to_owned(), "exactly once".to_owned()],
        "the resend with key delivery-42 is deduplicated, delivery-43 is a new message"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

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
                text: format!("batch message {n}"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i_herald_joins_a_dm_the_sdk_created_and_answers_in_it() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, alice_key) = random_key();
    let alice = sdk.create("alice", &alice_key, &node.url()).await;
    let (_, herald) = herald(&node, Arc::new(MemoryStore::new())).await;

    // The SDK fetches and validates herald's key package, then welcomes herald.
    let dm = sdk
        .call(
            "newDm",
            json!({"name": "alice", "peerInboxId": herald.inbox_id()}),
        )
        .await;
    let dm = dm["id"].as_str().unwrap().to_owned();
    sdk.call(
        "reply",
        json!({"name": "alice", "conversationId": dm, "text": "hello herald"}),
    )
    .await;

    assert_eq!(
        herald.sync_welcomes().await.unwrap(),
        vec![alice.inbox_id.clone()]
    );
    let got: Vec<_> = herald
        .sync_dm(&alice.inbox_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(got, vec!["hello herald".to_owned()]);

    herald
        .send_text(&alice.inbox_id, "hello alice", "k-1")
        .await
        .unwrap();
    assert_eq!(
        sdk.texts(&alice, &dm).await,
        vec!["hello herald".to_owned(), "hello alice".to_owned()]
    );
    let list = sdk.call("list", json!({"name": "alice"})).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "herald answered in the SDK's DM: {list}"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j_second_herald_installation_is_in_the_dm_and_can_send() {
    let node = node().await;
    let mut sdk = Sdk::start().await;
    let (_, bob_key) = random_key();
    let bob = sdk.create("bob", &bob_key, &node.url()).await;
    let wallet = Wallet::generate();
    let a = Client::open(&wallet, transport(&node), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let b = Client::open(&wallet, transport(&node), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    assert_eq!(a.inbox_id(), b.inbox_id());
    assert_ne!(a.installation_id(), b.installation_id());

    // A's DM must contain B too (libxmtp rejects a welcome that omits an installation).
    a.send_text(&bob.inbox_id, "from installation A", "k-a")
        .await
        .unwrap();
    assert_eq!(b.sync_welcomes().await.unwrap(), vec![bob.inbox_id.clone()]);
    b.send_text(&bob.inbox_id, "from installation B", "k-b")
        .await
        .unwrap();

    let dm = sdk.find_dm(&bob, a.inbox_id()).await.expect("DM listed");
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec![
            "from installation A".to_owned(),
            "from installation B".to_owned()
        ]
    );
    assert_eq!(
        sdk.call("list", json!({"name": "bob"}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sdk.shutdown().await;
    node.shutdown().await;
}
