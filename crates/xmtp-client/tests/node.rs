//! Client behaviour against herald's devnode alone (no SDK needed): registration rules,
//! inbox reuse, the 10-installation limit, batched address resolution.

use std::sync::Arc;

use xmtp_client::{Client, ClientError, GrpcTransport, MemoryStore, Store as _, Transport, Wallet};
use xmtp_devnode::{DevNode, DevNodeConfig};

fn transport(url: &str) -> Arc<dyn Transport> {
    Arc::new(GrpcTransport::connect_lazy(url).unwrap())
}

/// A client of a new wallet, its state in memory.
async fn fresh_client(url: &str) -> Client {
    Client::open(
        &Wallet::generate(),
        transport(url),
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn reuses_the_inbox_and_refuses_an_eleventh_installation() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let wallet = Wallet::generate();
    let mut installations = Vec::new();
    for _ in 0..10 {
        let c = Client::open(
            &wallet,
            transport(&node.url()),
            Arc::new(MemoryStore::new()),
        )
        .await
        .expect("up to 10 installations register");
        assert_eq!(
            c.inbox_id(),
            wallet.inbox_id(0),
            "every installation joins the same inbox"
        );
        installations.push(c.installation_id());
    }
    let states = installations_of(&wallet, &node.url()).await;
    assert_eq!(states, 10);
    let err = Client::open(
        &wallet,
        transport(&node.url()),
        Arc::new(MemoryStore::new()),
    )
    .await
    .expect_err("the 11th installation is refused");
    assert!(
        matches!(err, ClientError::TooManyInstallations { count: 10, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
    node.shutdown().await;
}

async fn installations_of(wallet: &Wallet, url: &str) -> usize {
    let probe = fresh_client(url).await;
    let states = probe.inbox_states(&[wallet.inbox_id(0)]).await.unwrap();
    states[&wallet.inbox_id(0)].state.installations().len()
}

#[tokio::test]
async fn resolves_addresses_in_batches() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let registered: Vec<Wallet> = (0..3).map(|_| Wallet::generate()).collect();
    for w in &registered {
        Client::open(w, transport(&node.url()), Arc::new(MemoryStore::new()))
            .await
            .unwrap();
    }
    let herald = fresh_client(&node.url()).await;
    // 120 addresses → three GetInboxIds calls of ≤50; upper-case input is normalised.
    let mut addresses: Vec<String> = (0..117).map(|_| Wallet::generate().address()).collect();
    addresses.extend(
        registered
            .iter()
            .map(|w| w.address().to_uppercase().replacen("0X", "0x", 1)),
    );
    let resolved = herald.resolve_inbox_ids(&addresses).await.unwrap();
    assert_eq!(resolved.len(), 120);
    for w in &registered {
        assert_eq!(resolved[&w.address()], Some(w.inbox_id(0)));
    }
    assert_eq!(resolved.values().filter(|v| v.is_none()).count(), 117);
    node.shutdown().await;
}

#[tokio::test]
async fn dm_to_an_unregistered_inbox_is_a_retryable_per_peer_error() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let herald = fresh_client(&node.url()).await;
    let ghost = Wallet::generate().inbox_id(0);
    let herald = Arc::new(herald);
    let item = xmtp_client::OutgoingText {
        peer_inbox_id: ghost.clone(),
        content: "hello?".into(),
        idempotency_key: "k".into(),
    };
    // Client futures are Send: the service drives them from spawned worker tasks.
    let task = tokio::spawn({
        let herald = herald.clone();
        async move { herald.send_batch(vec![item]).await }
    });
    let results = task.await.unwrap().unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownInbox(i) if *i == ghost),
        "{err}"
    );
    assert!(err.is_retryable());
    node.shutdown().await;
}

#[tokio::test]
async fn a_store_opened_with_another_wallet_is_refused() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    Client::open(&Wallet::generate(), transport(&node.url()), store.clone())
        .await
        .unwrap();
    let err = Client::open(&Wallet::generate(), transport(&node.url()), store)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::WalletMismatch { .. }), "{err}");
    node.shutdown().await;
}

#[tokio::test]
async fn a_group_stream_shows_which_messages_carry_our_sender_tag() {
    use futures::StreamExt as _;
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let url = node.url();
    let key = [9u8; 32];
    let alice = fresh_client(&url).await.with_sender_tag_key(key);
    let bob = fresh_client(&url).await;
    alice
        .send_text(bob.inbox_id(), "tagged", "k1")
        .await
        .unwrap();
    bob.sync_welcomes().await.unwrap();
    bob.send_text(alice.inbox_id(), "reply", "k2")
        .await
        .unwrap();
    let group = alice.dm_group_id(bob.inbox_id()).await.unwrap();

    let grpc = GrpcTransport::connect_lazy(&url).unwrap();
    let mut stream = grpc.subscribe_groups(vec![(group, 0)]).await.unwrap();
    let mut own = Vec::new();
    // Alice's commit and text, then Bob's message (on the DM he joined).
    for _ in 0..3 {
        let a = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("replayed")
            .unwrap()
            .unwrap();
        own.push(xmtp_client::sender_tag::is_own(
            &key,
            &a.data,
            &a.sender_hmac,
        ));
    }
    assert_eq!(own, [true, true, false]);
}

#[tokio::test]
async fn a_sync_passes_over_our_own_tagged_messages_without_rewriting_the_dm() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let url = node.url();
    let store = MemoryStore::new();
    let alice = Client::open(
        &Wallet::generate(),
        transport(&url),
        Arc::new(store.clone()),
    )
    .await
    .unwrap()
    .with_sender_tag_key([5u8; 32]);
    let bob = fresh_client(&url).await;
    let peer = [bob.inbox_id().to_owned()];
    let record_key = format!("dm/{}", bob.inbox_id());
    let stored_record = || async { store.get(record_key.as_bytes()).await.unwrap().unwrap() };
    for n in 0..4 {
        alice
            .send_text(bob.inbox_id(), "announcement", &format!("a{n}"))
            .await
            .unwrap();
    }
    // The last announcement is new to a sync (a send only syncs what came before it).
    let before = stored_record().await;
    assert!(alice.sync_dms(&peer).await.unwrap().is_empty());
    assert_eq!(
        stored_record().await,
        before,
        "our own messages alone leave the DM's record as it was"
    );

    // A reply is read once, and the record (its read cursor) is written.
    bob.sync_welcomes().await.unwrap();
    bob.send_text(alice.inbox_id(), "reply", "b0")
        .await
        .unwrap();
    let read = alice.sync_dms(&peer).await.unwrap();
    let texts: Vec<_> = read[bob.inbox_id()]
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["reply"]);
    let after_reply = stored_record().await;
    assert_ne!(after_reply, before);
    assert!(alice.sync_dms(&peer).await.unwrap().is_empty());

    // A long run of our own messages still moves the stored cursor (one page at most stays
    // to be passed over again after a restart).
    for n in 0..100 {
        alice
            .send_text(bob.inbox_id(), "announcement", &format!("c{n}"))
            .await
            .unwrap();
    }
    assert!(alice.sync_dms(&peer).await.unwrap().is_empty());
    assert_ne!(stored_record().await, after_reply);
    node.shutdown().await;
}
