//! `cargo bench -p xmtp-client --bench rounds`: a broadcast the way herald's delivery worker
//! sends it, round after round of `send_batch` (500 recipients each) through an in-process
//! devnode, printing the time of every round. First contact (a DM created per recipient)
//! then repeat (DMs exist). A per-round time that grows with the number of DMs the sender
//! already holds is the degradation this bench exists to catch.
//!
//! Knobs: `ROUNDS_RECIPIENTS` (default 5,000), `ROUNDS_BATCH` (500), `ROUNDS_STORE`
//! (`memory` default, or `redb` for a durable store on disk).

use std::sync::Arc;
use std::time::Instant;

use futures::{stream, StreamExt as _};
use xmtp_client::{
    Client, GrpcTransport, MemoryStore, OutgoingText, RedbStore, Store, Transport, Wallet,
};
use xmtp_devnode::{DevNode, DevNodeConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env_or("ROUNDS_RECIPIENTS", 5_000);
    let batch = env_or("ROUNDS_BATCH", 500).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let node = DevNode::start(DevNodeConfig::default())
            .await
            .expect("node");
        let transport: Arc<dyn Transport> =
            Arc::new(GrpcTransport::connect_lazy(&node.url()).expect("transport"));
        let t = Instant::now();
        let inboxes: Vec<String> = stream::iter(0..n)
            .map(|_| {
                let transport = transport.clone();
                async move {
                    Client::open(&Wallet::generate(), transport, Arc::new(MemoryStore::new()))
                        .await
                        .expect("recipient registers")
                        .inbox_id()
                        .to_owned()
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        println!(
            "{n} recipients registered in {:.1} s (setup)",
            t.elapsed().as_secs_f64()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = match std::env::var("ROUNDS_STORE").as_deref() {
            Ok("redb") => Arc::new(RedbStore::open(dir.path().join("s.redb")).expect("redb")),
            _ => Arc::new(MemoryStore::new()),
        };
        let sender = Client::open(&Wallet::generate(), transport, store)
            .await
            .expect("sender registers");
        for phase in ["first contact", "repeat"] {
            let started = Instant::now();
            let mut line = format!("{phase}: ms per round of {batch}:");
            for (i, chunk) in inboxes.chunks(batch).enumerate() {
                let items = chunk
                    .iter()
                    .map(|p| OutgoingText {
                        peer_inbox_id: p.clone(),
                        content: "x".repeat(200).into(),
                        idempotency_key: format!("{phase}-{p}"),
                    })
                    .collect();
                let t = Instant::now();
                let results = sender.send_batch(items).await.expect("batch sends");
                assert!(results.iter().all(Result::is_ok), "round {i} had failures");
                line += &format!(" {:.0}", t.elapsed().as_secs_f64() * 1e3);
            }
            let secs = started.elapsed().as_secs_f64();
            println!("{line}");
            println!(
                "{phase}: {n} messages in {secs:.2} s = {:.0} messages/s",
                n as f64 / secs
            );
        }
        node.shutdown().await;
    });
}
