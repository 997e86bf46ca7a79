//! Chat self-service end to end: an official-SDK user DMs the channel's XMTP inbox through the
//! local node; herald's inbound step applies the commands and the SDK reads the replies.
//!
//! The channel's client is built here from the channel's own (sealed) wallet, as the delivery
//! pipeline will; sending announcements is the pipeline's part, so this checks the database
//! state and the send-time check the pipeline calls.

use std::sync::Arc;

use herald::crypto::ChannelWallet;
use herald::domain::{Address, ChannelId};
use herald::inbound::{run_once, watch_recipients};
use herald::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::json;
use xmtp_client::{Client, GrpcTransport, MemoryStore, Wallet};
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::helpers::TestApp;
use crate::sdk::{Sdk, SdkUser};

const DEFAULT_WELCOME: &str = "default welcome";

async fn channel_client(app: &TestApp, ch: &str, url: &str, state: Arc<MemoryStore>) -> Client {
    let id = ChannelId::from_trusted(ch.to_owned());
    let secret = app
        .store
        .pipeline()
        .channel_secret(&id)
        .await
        .unwrap()
        .unwrap();
    let key = ChannelWallet::open(&app.kek, &secret.wallet_key_sealed, ch).unwrap();
    let wallet = Wallet::from_bytes(&key.to_bytes().into()).unwrap();
    let transport = Arc::new(GrpcTransport::connect_lazy(url).unwrap());
    Client::open(&wallet, transport, state)
        .await
        .expect("channel registers on the node")
}

async fn status(store: &dyn Store, ch: &ChannelId, who: &Address) -> Option<String> {
    store.subscriber_status(ch, who).await.unwrap()
}

/// One SDK user's DM with the channel, answered by explicit inbound passes.
struct Talk<'a> {
    sdk: &'a mut Sdk,
    dm: &'a str,
    who: &'a SdkUser,
    store: &'a dyn Store,
    channel: &'a ChannelId,
    herald: &'a Client,
    /// Texts in the DM so far.
    texts: usize,
    /// Ids (as the SDK reports them) of the messages sent so far.
    sent: Vec<String>,
}

impl Talk<'_> {
    /// Sends `text`, runs one inbound pass, and returns herald's reply as the SDK reads it.
    async fn turn(&mut self, text: &str) -> String {
        let id = self.sdk.say(self.who, self.dm, text).await;
        self.sent.push(id);
        let done = run_once(self.store, self.channel, self.herald, DEFAULT_WELCOME)
            .await
            .unwrap();
        assert_eq!(done.handled, 1, "{text}: one message handled");
        self.texts += 2;
        let texts = self.sdk.texts(self.who, self.dm).await;
        assert_eq!(texts.len(), self.texts, "{texts:?}");
        texts.last().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_user_subscribes_stops_restarts_and_picks_topics_by_chat() {
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    app.topic(&key, &ch, json!({"name": "security"})).await;
    let channel = ChannelId::from_trusted(ch.clone());
    let store = app.store.as_ref();
    let state = Arc::new(MemoryStore::new());
    let herald = channel_client(&app, &ch, &node.url(), state.clone()).await;

    let mut sdk = Sdk::start().await;
    let alice = sdk.user("alice", &node.url()).await;
    let alice_addr = Address::parse(&alice.address).unwrap();
    let dm = sdk.open_dm(&alice, herald.inbox_id()).await;

    // Each turn: the SDK user writes, herald runs one inbound pass, the SDK reads the answer.
    let mut talk = Talk {
        sdk: &mut sdk,
        dm: &dm,
        who: &alice,
        store,
        channel: &channel,
        herald: &herald,
        texts: 0,
        sent: Vec::new(),
    };
    let reply = talk.turn("  Subscribe ").await;
    assert!(reply.starts_with("You're subscribed."), "{reply}");
    assert_eq!(
        status(store, &channel, &alice_addr).await.as_deref(),
        Some("active")
    );
    assert!(crate::helpers::deliverable(store, &channel, &alice_addr, None).await);

    let reply = talk.turn("STOP").await;
    assert!(reply.starts_with("You're unsubscribed"), "{reply}");
    assert_eq!(
        status(store, &channel, &alice_addr).await.as_deref(),
        Some("unsubscribed")
    );
    assert!(!crate::helpers::deliverable(store, &channel, &alice_addr, None).await);

    let reply = talk.turn("start").await;
    assert!(reply.starts_with("You're subscribed."), "{reply}");
    assert!(crate::helpers::deliverable(store, &channel, &alice_addr, Some("security")).await);

    let reply = talk.turn("help").await;
    assert!(reply.contains("STOP <topic>"), "{reply}");
    let reply = talk.turn("topics").await;
    assert!(reply.contains("security - on"), "{reply}");
    let reply = talk.turn("stop security").await;
    assert!(reply.contains("won't get security"), "{reply}");
    assert!(!crate::helpers::deliverable(store, &channel, &alice_addr, Some("security")).await);
    assert!(crate::helpers::deliverable(store, &channel, &alice_addr, None).await);
    let reply = talk.turn("start security").await;
    assert!(reply.contains("You'll get security"), "{reply}");
    let reply = talk.turn("what is this").await;
    assert!(
        reply.contains("Reply HELP"),
        "a known wallet gets no welcome: {reply}"
    );

    // The sender's wallet came from its inbox's verified identity log.
    let peers = store.inbound_peers(&channel).await.unwrap();
    assert_eq!(peers, [(alice.inbox_id.clone(), alice_addr.clone())]);

    // The consent log names the chat as the source, with the message as evidence.
    let history = store.consent_history(&channel, &alice_addr).await.unwrap();
    let actions: Vec<(&str, &str)> = history
        .iter()
        .map(|e| (e.action.as_str(), e.source.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("subscribe", "dm"),
            ("unsubscribe", "dm"),
            ("subscribe", "dm"),
            ("topic_off", "dm"),
            ("topic_on", "dm")
        ]
    );
    // Each entry names the message exactly as the subscriber's app shows it (the SDK's
    // message id) and the verified wallet that sent it.
    let evidence: Vec<serde_json::Value> = history
        .iter()
        .map(|e| serde_json::from_str(e.evidence.as_deref().unwrap()).unwrap())
        .collect();
    // Turns: subscribe, stop, start, help, topics, stop security, start security.
    let changing = [0, 1, 2, 5, 6].map(|turn| talk.sent[turn].clone());
    for (entry, sent) in evidence.iter().zip(changing) {
        assert_eq!(entry["xmtp_message_id"], sent, "{entry}");
        assert_eq!(entry["sender_wallet"], alice_addr.as_str());
        assert_eq!(entry["sender_inbox_id"], alice.inbox_id.as_str());
    }

    let expected_texts = talk.texts;

    // A restarted client (same persisted state) handles nothing again and answers nothing twice.
    drop(herald);
    let again = channel_client(&app, &ch, &node.url(), state.clone()).await;
    let idle = run_once(store, &channel, &again, DEFAULT_WELCOME)
        .await
        .unwrap();
    assert_eq!(idle.handled, 0);
    assert_eq!(sdk.texts(&alice, &dm).await.len(), expected_texts);

    // A first message from an unknown wallet gets the channel's welcome text, once.
    let set = app
        .call(
            Method::PUT,
            &format!("/v1/channels/{ch}/welcome"),
            Some(&key),
            Some(json!({"text": "Hi! Reply SUBSCRIBE."})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let bob = sdk.user("bob", &node.url()).await;
    let bob_dm = sdk.open_dm(&bob, again.inbox_id()).await;
    sdk.say(&bob, &bob_dm, "gm").await;
    let done = run_once(store, &channel, &again, DEFAULT_WELCOME)
        .await
        .unwrap();
    assert_eq!((done.joined, done.handled), (1, 1));
    assert_eq!(
        sdk.texts(&bob, &bob_dm).await,
        ["gm", "Hi! Reply SUBSCRIBE."]
    );
    let bob_addr = Address::parse(&bob.address).unwrap();
    assert_eq!(
        status(store, &channel, &bob_addr).await,
        None,
        "chatting is not subscribing"
    );

    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sent_in_reply_to_an_announcement_is_honoured() {
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let channel = ChannelId::from_trusted(ch.clone());
    let store = app.store.as_ref();
    let herald = channel_client(&app, &ch, &node.url(), Arc::new(MemoryStore::new())).await;
    let mut sdk = Sdk::start().await;
    let carol = sdk.user("carol", &node.url()).await;
    let carol_addr = Address::parse(&carol.address).unwrap();
    let put = app
        .call(
            Method::PUT,
            &format!("/v1/channels/{ch}/subscribers/{}", carol.address),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);

    // What the pipeline does per recipient: watch it, check at send time, send.
    assert_eq!(
        watch_recipients(store, &channel, &herald, std::slice::from_ref(&carol_addr))
            .await
            .unwrap(),
        1
    );
    let announce = |text: &'static str| {
        let (herald, channel, carol_addr, inbox) =
            (&herald, &channel, &carol_addr, carol.inbox_id.clone());
        async move {
            if crate::helpers::deliverable(store, channel, carol_addr, None).await {
                herald.send_text(&inbox, text, text).await.unwrap();
            }
        }
    };
    announce("Announcement 1").await;
    let dm = sdk
        .find_dm(&carol, herald.inbox_id())
        .await
        .expect("carol sees herald's DM");
    assert_eq!(sdk.texts(&carol, &dm).await, ["Announcement 1"]);

    sdk.say(&carol, &dm, "stop").await;
    let done = run_once(store, &channel, &herald, DEFAULT_WELCOME)
        .await
        .unwrap();
    assert_eq!(done.handled, 1);
    announce("Announcement 2").await;
    let texts = sdk.texts(&carol, &dm).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[2].starts_with("You're unsubscribed"), "{texts:?}");
    assert_eq!(
        status(store, &channel, &carol_addr).await.as_deref(),
        Some("unsubscribed")
    );

    sdk.shutdown().await;
    node.shutdown().await;
}
