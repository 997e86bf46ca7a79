//! The optional write rate limit answers RESOURCE_EXHAUSTED once a client's burst is spent;
//! reads are never limited, clients are told apart by `x-herald-client`, and a batch costs one
//! token per message.

mod common;

use common::*;
use tonic::{Code, Request};
use xmtp_devnode::{DevNodeConfig, RateLimit};
use xmtp_proto::mls_api::{QueryGroupMessagesRequest, SendGroupMessagesRequest};

fn batch(tag: &str) -> SendGroupMessagesRequest {
    SendGroupMessagesRequest {
        messages: vec![input(private_message(&[1; 16], APPLICATION, tag))],
    }
}

fn as_client(name: &str, r: SendGroupMessagesRequest) -> Request<SendGroupMessagesRequest> {
    let mut request = Request::new(r);
    request
        .metadata_mut()
        .insert("x-herald-client", name.parse().unwrap());
    request
}

#[tokio::test]
async fn burst_then_resource_exhausted() {
    let config = DevNodeConfig {
        rate_limit: Some(RateLimit {
            burst: 3,
            per_minute: 1,
        }),
        ..DevNodeConfig::default()
    };
    let (node, mut c) = start(config).await;
    for i in 0..3 {
        c.mls
            .send_group_messages(as_client("a", batch(&format!("m{i}"))))
            .await
            .unwrap();
    }
    let err = c
        .mls
        .send_group_messages(as_client("a", batch("over")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    c.mls
        .send_group_messages(as_client("b", batch("other client")))
        .await
        .unwrap();
    for _ in 0..10 {
        c.mls
            .query_group_messages(QueryGroupMessagesRequest {
                group_id: vec![1; 16],
                paging_info: None,
            })
            .await
            .unwrap();
    }
    node.shutdown().await;
}

#[tokio::test]
async fn off_by_default() {
    let (node, mut c) = start_memory().await;
    for i in 0..50 {
        c.mls
            .send_group_messages(batch(&format!("m{i}")))
            .await
            .unwrap();
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_batch_larger_than_the_budget_is_refused_whole() {
    let config = DevNodeConfig {
        rate_limit: Some(RateLimit {
            burst: 5,
            per_minute: 1,
        }),
        ..DevNodeConfig::default()
    };
    let (node, mut c) = start(config).await;
    let many = |n: usize, tag: &str| SendGroupMessagesRequest {
        messages: (0..n)
            .map(|i| input(private_message(&[2; 16], APPLICATION, &format!("{tag}{i}"))))
            .collect(),
    };
    c.mls
        .send_group_messages(as_client("a", many(3, "x")))
        .await
        .unwrap();
    let err = c
        .mls
        .send_group_messages(as_client("a", many(3, "y")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    c.mls
        .send_group_messages(as_client("a", many(2, "z")))
        .await
        .expect("two tokens were left");
    node.shutdown().await;
}
