//! Interop proofs: herald's client sends, the official XMTP node SDK 6.0.0 (libxmtp 1.10)
//! receives, through herald's devnode started in-process on a free port.
//!
//! Needs `interop/node_modules` (run `interop/setup.sh`); the tests fail, not skip, without it.

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
