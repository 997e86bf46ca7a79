//! Devnode throughput: batched SendGroupMessages (batches of 100, goal >= 20,000 msg/s on
//! 2 cores) in memory and with `--data`, and subscription fan-out. Prints figures; run with
//! `cargo bench -p xmtp-devnode --bench throughput` (add `-- --quick` for a short run).
//! Single-sender figures are round-trip bound and drop sharply when other processes load
//! the cores; the multi-sender figure is the node's capacity.

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle};
use xmtp_proto::mls_api::mls_api_client::MlsApiClient;
use xmtp_proto::mls_api::{
    group_message_input, subscribe_group_messages_request::Filter, GroupMessageInput,
    SendGroupMessagesRequest, SubscribeGroupMessagesRequest,
};

const BATCH: usize = 100;
/// Roughly the size of a short encrypted text message.
const PAYLOAD: usize = 200;

fn message(group: &[u8; 16], seq: u64) -> GroupMessageInput {
    let mut data = vec![0, 1, 0, 2, 16];
    data.extend_from_slice(group);
    data.extend_from_slice(&1u64.to_be_bytes());
    data.push(1);
    // authenticated_data (empty), encrypted_sender_data, then the ciphertext as a 2-byte
    // MLS varint-prefixed vector.
    data.extend_from_slice(&[0, 2, 0xee, 0xee]);
    let len = (8 + PAYLOAD) as u16 | 0x4000;
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(&seq.to_be_bytes());
    data.resize(data.len() + PAYLOAD, 0xab);
    GroupMessageInput {
        version: Some(group_message_input::Version::V1(group_message_input::V1 {
            data,
            sender_hmac: vec![7; 32],
            should_push: true,
        })),
    }
}

async fn client(node: &DevNodeHandle) -> MlsApiClient<Channel> {
    let channel = Channel::from_shared(node.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    MlsApiClient::new(channel)
}

/// `senders` concurrent connections each send `batches` batches to their own groups.
async fn send_throughput(node: &DevNodeHandle, senders: usize, batches: usize) -> f64 {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for s in 0..senders {
        let mut c = client(node).await;
        tasks.push(tokio::spawn(async move {
            for b in 0..batches {
                let group = [
                    (s as u8),
                    (b % 200) as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                ];
                let messages = (0..BATCH)
                    .map(|i| message(&group, (b * BATCH + i) as u64))
                    .collect();
                c.send_group_messages(SendGroupMessagesRequest { messages })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (senders * batches * BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// `subscribers` streams on one group; `messages` sent in batches; deliveries per second.
async fn fan_out(node: &DevNodeHandle, subscribers: usize, messages: usize) -> (f64, Duration) {
    let group = [0xfe; 16];
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut c = client(node).await;
        // Nothing is stored for this group yet, so cursor 0 measures live delivery only.
        let filters = vec![Filter {
            group_id: group.to_vec(),
            id_cursor: 0,
        }];
        let mut stream = c
            .subscribe_group_messages(SubscribeGroupMessagesRequest { filters })
            .await
            .unwrap()
            .into_inner();
        readers.push(tokio::spawn(async move {
            let _keep = c;
            let mut seen = 0;
            while seen < messages {
                stream.next().await.expect("stream open").expect("ok");
                seen += 1;
            }
            Instant::now()
        }));
    }
    let start = Instant::now();
    let mut sender = client(node).await;
    for b in 0..messages / BATCH {
        let msgs = (0..BATCH)
            .map(|i| message(&group, (b * BATCH + i) as u64 + 1_000_000_000))
            .collect();
        sender
            .send_group_messages(SendGroupMessagesRequest { messages: msgs })
            .await
            .unwrap();
    }
    let mut last = start;
    for r in readers {
        last = last.max(r.await.unwrap());
    }
    let took = last - start;
    ((subscribers * messages) as f64 / took.as_secs_f64(), took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let batches = if quick { 50 } else { 500 };
    println!("devnode throughput (batches of {BATCH}, {PAYLOAD}-byte payloads, 2 worker threads)");

    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    // Warm-up (connections, allocator, table growth) so the first figure is not skewed.
    send_throughput(&node, 2, 10).await;
    for senders in [1, 4] {
        let rate = send_throughput(&node, senders, batches / senders).await;
        println!("  memory  SendGroupMessages, {senders} sender(s): {rate:>9.0} msg/s");
    }
    let (rate, took) = fan_out(&node, 50, if quick { 1_000 } else { 5_000 }).await;
    println!("  memory  fan-out 1 group -> 50 subscribers: {rate:>9.0} deliveries/s ({took:?})");
    node.shutdown().await;

    let dir = std::env::temp_dir().join(format!("devnode-bench-{}", std::process::id()));
    let node = DevNode::start(DevNodeConfig {
        data_dir: Some(dir.clone()),
        ..DevNodeConfig::default()
    })
    .await
    .unwrap();
    for senders in [1, 4] {
        let rate = send_throughput(&node, senders, batches / senders).await;
        println!("  --data  SendGroupMessages, {senders} sender(s): {rate:>9.0} msg/s");
    }
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
