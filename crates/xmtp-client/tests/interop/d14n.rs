//! herald's client on XMTP's decentralized network (d14n) through the devnode's gateway and
//! node API, judged by the official SDK configured for d14n (`gatewayHost`, a closed v3 port).

use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::json;
use xmtp_client::{
    Client, D14nTransport, GatewayAuth, MemoryStore, Subscriptions, Transport, Wallet,
};
use xmtp_devnode::DevNodeHandle;

use super::{finish, sdk, start};

fn d14n(node: &DevNodeHandle) -> D14nTransport {
    D14nTransport::connect_lazy(&node.url(), GatewayAuth::default()).unwrap()
}

async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

async fn d14n_herald(node: &DevNodeHandle) -> Client {
    let transport: Arc<dyn Transport> = Arc::new(d14n(node));
    Client::open(&Wallet::generate(), transport, Arc::new(MemoryStore::new()))
        .await
        .expect("herald registers over d14n")
}

async fn d14n_bob(sdk: &mut sdk::Sdk, node: &DevNodeHandle) -> sdk::SdkClient {
    let (_, key) = sdk::random_key();
    let nowhere = closed_port().await;
    sdk.create_d14n("bob", &key, &node.url(), &nowhere).await
}

/// herald's DM reaches an SDK d14n client exactly once, by sync and by stream; herald's own
/// welcome stream on d14n sees the welcome it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_dm_over_d14n_is_read_once_by_the_sdk() {
    let (node, mut sdk) = start().await;
    let bob = d14n_bob(&mut sdk, &node).await;
    sdk.call("streamStart", json!({"name": "bob"})).await;
    // Through the trait the service's watcher holds (v3 or d14n alike).
    let watcher: Arc<dyn Subscriptions> = Arc::new(d14n(&node));
    let bob_key = hex::decode(&bob.installation_id).unwrap();
    let mut welcomes = watcher
        .subscribe_welcomes(vec![(bob_key.clone(), 0)])
        .await
        .expect("welcome stream");

    let herald = d14n_herald(&node).await;
    let text = "Block 19000001 over d14n ✓";
    herald
        .send_text(&bob.inbox_id, text, "d14n-1")
        .await
        .expect("send over d14n");

    let (key, id) = welcomes.next().await.unwrap().expect("welcome arrives");
    assert_eq!(key, bob_key);
    assert!(id > 0);

    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("SDK lists the DM after sync");
    assert_eq!(sdk.texts(&bob, &dm).await, vec![text.to_owned()]);
    let streamed = sdk
        .wait_streamed(&bob, |s| {
            s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["text"] == json!(text))
        })
        .await;
    let copies = streamed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"] == json!(text))
        .count();
    assert_eq!(copies, 1, "streamed once: {streamed}");
    // A repeat with the same idempotency key stays one message.
    herald
        .send_text(&bob.inbox_id, text, "d14n-1")
        .await
        .unwrap();
    assert_eq!(sdk.texts(&bob, &dm).await, vec![text.to_owned()]);
    finish(sdk, node).await;
}

/// The SDK's reply over d14n reaches herald's client (by sync, once) and herald's group stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reply_over_d14n_reaches_herald() {
    let (node, mut sdk) = start().await;
    let bob = d14n_bob(&mut sdk, &node).await;
    let herald = d14n_herald(&node).await;
    herald
        .send_text(&bob.inbox_id, "ping", "k-ping")
        .await
        .unwrap();
    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("DM listed");

    let watcher = d14n(&node);
    let group_id = hex::decode(&dm).unwrap();
    let mut arrivals = watcher
        .subscribe_groups(vec![(group_id.clone(), 0)])
        .await
        .expect("group stream");
    // Replay first: herald's own messages.
    let first = arrivals.next().await.unwrap().expect("replayed arrival");
    assert_eq!(first.group_id, group_id);

    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "pong over d14n"}),
    )
    .await;
    let replies = herald.sync_dm(&bob.inbox_id).await.expect("sync over d14n");
    let texts: Vec<_> = replies.iter().filter_map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["pong over d14n".to_owned()]);
    assert_eq!(replies[0].sender_inbox_id, bob.inbox_id);
    assert!(
        herald.sync_dm(&bob.inbox_id).await.unwrap().is_empty(),
        "handed out once"
    );
    // The stream saw the reply too (ids rise; the last arrival is the newest message).
    let newest = herald_newest(&watcher, &group_id).await;
    let mut last = first.id;
    while last < newest {
        last = arrivals.next().await.unwrap().expect("live arrival").id;
    }
    assert_eq!(last, newest);

    // herald answers after the peer's key update; the SDK reads it.
    herald
        .send_text(&bob.inbox_id, "after the key update", "k-2")
        .await
        .unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await.last().unwrap(),
        "after the key update"
    );
    finish(sdk, node).await;
}

/// The id of a group's newest message, read over d14n (GetNewestEnvelope).
async fn herald_newest(t: &D14nTransport, group_id: &[u8]) -> u64 {
    use xmtp_proto::mls_api::{
        group_message, PagingInfo, QueryGroupMessagesRequest, SortDirection,
    };
    let r = t
        .query_group_messages(QueryGroupMessagesRequest {
            group_id: group_id.to_vec(),
            paging_info: Some(PagingInfo {
                direction: SortDirection::Descending as i32,
                limit: 1,
                id_cursor: 0,
            }),
        })
        .await
        .unwrap();
    match &r.messages[0].version {
        Some(group_message::Version::V1(v)) => v.id,
        None => 0,
    }
}

/// herald restarts between messages (durable state, a new transport that remembers no
/// cursor): the reply that arrived meanwhile is read once, and the SDK sees every message once
/// in one DM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_restart_between_messages_over_d14n() {
    let (node, mut sdk) = start().await;
    let bob = d14n_bob(&mut sdk, &node).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let wallet = Wallet::generate();
    let open = || async {
        let store: Arc<dyn xmtp_client::Store> =
            Arc::new(xmtp_client::RedbStore::open(&path).unwrap());
        let transport: Arc<dyn Transport> = Arc::new(d14n(&node));
        Client::open(&wallet, transport, store).await.unwrap()
    };
    let inbox = {
        let herald = open().await;
        herald
            .send_text(&bob.inbox_id, "before restart", "k-1")
            .await
            .unwrap();
        assert!(herald.sync_dm(&bob.inbox_id).await.unwrap().is_empty());
        herald.inbox_id().to_owned()
    };
    let dm = sdk.find_dm(&bob, &inbox).await.unwrap();
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "while you were away"}),
    )
    .await;

    let herald = open().await;
    let texts: Vec<_> = herald
        .sync_dm(&bob.inbox_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, vec!["while you were away".to_owned()]);
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
    assert_eq!(list.as_array().unwrap().len(), 1, "one DM: {list}");
    assert!(herald.sync_dm(&bob.inbox_id).await.unwrap().is_empty());
    finish(sdk, node).await;
}
