//! Per-sender limits on chat commands: one XMTP inbox flooding a channel with DMs gets its
//! burst answered and the rest dropped unanswered, while another sender is still served.

use std::sync::Arc;

use herald::crypto::ChannelWallet;
use herald::domain::ChannelId;
use herald::inbound::{run_pass, ChatLimiter};
use xmtp_client::{Client, GrpcTransport, MemoryStore, Wallet};
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::helpers::TestApp;

async fn client_of(wallet: &Wallet, url: &str) -> Client {
    let transport = Arc::new(GrpcTransport::connect_lazy(url).unwrap());
    Client::open(wallet, transport, Arc::new(MemoryStore::new()))
        .await
        .expect("client registers on the node")
}

/// Texts `herald` sent in `client`'s DM with it.
async fn replies(client: &Client, herald: &Client) -> usize {
    client
        .sync_dm(herald.inbox_id())
        .await
        .unwrap()
        .iter()
        .filter(|m| m.sender_inbox_id == herald.inbox_id() && m.text.is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_inbox_gets_its_burst_answered_and_others_are_still_served() {
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let channel = ChannelId::from_trusted(ch.clone());
    let sealed = app
        .store
        .pipeline()
        .channel_secret(&channel)
        .await
        .unwrap()
        .unwrap()
        .wallet_key_sealed;
    let channel_key = ChannelWallet::open(&app.kek, &sealed, &ch).unwrap();
    let channel_wallet = Wallet::from_bytes(&channel_key.to_bytes().into()).unwrap();
    let herald = client_of(&channel_wallet, &node.url()).await;
    let mallory = client_of(&Wallet::generate(), &node.url()).await;
    let alice = client_of(&Wallet::generate(), &node.url()).await;

    const FLOOD: usize = 12;
    for i in 0..FLOOD {
        mallory
            .send_text(herald.inbox_id(), "help", &format!("flood-{i}"))
            .await
            .unwrap();
    }
    alice
        .send_text(herald.inbox_id(), "help", "alice-1")
        .await
        .unwrap();

    // A burst of 3 per sender, refilled far slower than this test runs (1 per minute).
    let limits = ChatLimiter::new(1, 3);
    let store = app.store.as_ref();
    let done = run_pass(store, &channel, &herald, "welcome", None, &limits)
        .await
        .unwrap();
    assert_eq!(done.handled, 3 + 1, "mallory's burst and alice's command");
    assert_eq!(done.limited, FLOOD - 3);
    assert_eq!(
        replies(&mallory, &herald).await,
        3,
        "the flood past the burst gets no reply"
    );
    assert_eq!(replies(&alice, &herald).await, 1, "alice is answered");

    // Dropped commands were claimed: a later pass does not answer them either.
    let again = run_pass(store, &channel, &herald, "welcome", None, &limits)
        .await
        .unwrap();
    assert_eq!((again.handled, again.limited), (0, 0));
    assert_eq!(replies(&mallory, &herald).await, 0, "nothing new in the DM");

    node.shutdown().await;
}
