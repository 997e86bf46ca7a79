//! (i) DMs the SDK creates with herald are joined, read and answered.

use std::sync::Arc;

use super::sdk::{random_key, Sdk};
use super::{herald, node};
use serde_json::json;
use xmtp_client::MemoryStore;

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
