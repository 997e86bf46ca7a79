//! The node's conformance tests: the official XMTP SDK (`@xmtp/node-sdk` 6.0.0, i.e. libxmtp
//! 1.10) runs against an in-process node. They need `node` and the harness installed by
//! `interop/setup.sh`, and fail (never skip) when it is missing, so CI cannot pass without
//! actually running the official client.

#[path = "support/sdk.rs"]
mod sdk;

use xmtp_devnode::{DevNode, DevNodeConfig};

/// Register, canMessage, DM, send, receive by sync and by stream, reply, syncAll, second
/// installation (`interop/dm-roundtrip.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_dm_round_trip() {
    sdk::require_harness();
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let url = node.url();
    sdk::run_script("dm-roundtrip.mjs", &["--api", &url]).await;
    node.shutdown().await;
}

/// A DM created before a restart on `--data` is delivered after it
/// (`interop/restart-roundtrip.mjs`, clients kept on disk between the phases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_survives_node_restart_with_data() {
    sdk::require_harness();
    let data = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    for phase in ["1", "2"] {
        let config = DevNodeConfig {
            data_dir: Some(data.path().to_path_buf()),
            ..DevNodeConfig::default()
        };
        let node = DevNode::start(config).await.expect("devnode starts");
        let url = node.url();
        sdk::run_script(
            "restart-roundtrip.mjs",
            &["--api", &url, "--phase", phase, "--dir", &state_dir],
        )
        .await;
        node.shutdown().await;
    }
}
