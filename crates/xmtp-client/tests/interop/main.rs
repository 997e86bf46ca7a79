//! Interop proofs: herald's client sends, the official XMTP node SDK 6.0.0 (libxmtp 1.10)
//! receives, through herald's devnode started in-process on a free port.
//!
//! Needs `interop/node_modules` (run `interop/setup.sh`); the tests fail, not skip, without it.

mod basics;
mod batch;
mod counting;
mod d14n;
mod devices;
mod durability;
mod incoming;
mod sdk;

use std::sync::Arc;

use xmtp_client::{Client, GrpcTransport, MemoryStore, Store, Transport, Wallet};
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle};

async fn node() -> DevNodeHandle {
    DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts")
}

/// A devnode and the SDK driver: where most tests start.
async fn start() -> (DevNodeHandle, sdk::Sdk) {
    (node().await, sdk::Sdk::start().await)
}

/// Stops the SDK driver, then the node.
async fn finish(sdk: sdk::Sdk, node: DevNodeHandle) {
    sdk.shutdown().await;
    node.shutdown().await;
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

/// A herald client with a new wallet and in-memory state, registered on `node`.
async fn memory_herald(node: &DevNodeHandle) -> Client {
    herald(node, Arc::new(MemoryStore::new())).await.1
}
