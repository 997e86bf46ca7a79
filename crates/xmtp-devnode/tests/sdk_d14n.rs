//! The official SDK (`@xmtp/node-sdk` 6.0.0) as a d14n client (`gatewayHost`) against an
//! in-process devnode: it publishes through the node's gateway API, finds the node itself in
//! `GetNodes`, health-checks it and reads through its ReplicationApi. Fails (never skips) when
//! the harness from `interop/setup.sh` is missing.

#[path = "support/sdk.rs"]
mod sdk;

use xmtp_devnode::{DevNode, DevNodeConfig};

/// A v3 URL nothing listens on: a d14n client that fell back to v3 would fail.
async fn closed_port_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Two d14n clients: register, canMessage, DM, send, receive by sync and by stream, reply,
/// syncAll, second installation (`interop/dm-roundtrip.mjs --gateway`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_dm_round_trip_over_d14n() {
    sdk::require_harness();
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let (gateway, nowhere) = (node.url(), closed_port_url().await);
    sdk::run_script(
        "dm-roundtrip.mjs",
        &["--gateway", &gateway, "--api", &nowhere],
    )
    .await;
    node.shutdown().await;
}

/// A v3 client and a d14n client on the same node: the DM, its messages and the replies cross
/// between the two APIs (one store, the same messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_v3_and_d14n_clients_share_one_store() {
    sdk::require_harness();
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let url = node.url();
    sdk::run_script(
        "dm-roundtrip.mjs",
        &["--gateway", &url, "--api", &url, "--mixed"],
    )
    .await;
    node.shutdown().await;
}
