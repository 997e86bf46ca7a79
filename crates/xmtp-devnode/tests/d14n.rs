//! The d14n API of the devnode (docs/D14N.md): gateway publish with topic checks, reads with
//! one cursor per originator under libxmtp's v3-compatibility originator ids, the node list,
//! the health check, and a subscription that replays and then streams. Writes through one API
//! are read through the other (one store).

mod common;

use common::*;
use prost::Message;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic::Code;
use xmtp_proto::d14n_envelopes::{
    client_envelope::Payload, AuthenticatedData, ClientEnvelope, Cursor, OriginatorEnvelope,
    PayerEnvelope, UnsignedOriginatorEnvelope,
};
use xmtp_proto::d14n_message_api::replication_api_client::ReplicationApiClient;
use xmtp_proto::d14n_message_api::{
    EnvelopesQuery, GetNewestEnvelopeRequest, QueryEnvelopesRequest, SubscribeEnvelopesRequest,
};
use xmtp_proto::d14n_payer_api::payer_api_client::PayerApiClient;
use xmtp_proto::d14n_payer_api::{GetNodesRequest, PublishClientEnvelopesRequest};
use xmtp_proto::grpc::health::v1::health_client::HealthClient;
use xmtp_proto::grpc::health::v1::{health_check_response::ServingStatus, HealthCheckRequest};
use xmtp_proto::mls_api::{
    FetchKeyPackagesRequest, KeyPackageUpload, QueryGroupMessagesRequest, UploadKeyPackageRequest,
};

struct D14n {
    gateway: PayerApiClient<Channel>,
    node: ReplicationApiClient<Channel>,
    health: HealthClient<Channel>,
}

async fn d14n(url: String) -> D14n {
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    D14n {
        gateway: PayerApiClient::new(channel.clone()),
        node: ReplicationApiClient::new(channel.clone()),
        health: HealthClient::new(channel),
    }
}

fn topic(kind: u8, id: &[u8]) -> Vec<u8> {
    [&[kind][..], id].concat()
}

fn envelope(target_topic: Vec<u8>, payload: Payload) -> ClientEnvelope {
    ClientEnvelope {
        aad: Some(AuthenticatedData {
            target_topic,
            depends_on: None,
        }),
        payload: Some(payload),
    }
}

fn group_envelope(group: &[u8], data: Vec<u8>) -> ClientEnvelope {
    envelope(topic(0, group), Payload::GroupMessage(input(data)))
}

/// (originator, sequence id, client envelope) of a returned envelope.
fn open(e: &OriginatorEnvelope) -> (u32, u64, ClientEnvelope) {
    let u = UnsignedOriginatorEnvelope::decode(e.unsigned_originator_envelope.as_slice()).unwrap();
    let p = PayerEnvelope::decode(u.payer_envelope_bytes.as_slice()).unwrap();
    let c = ClientEnvelope::decode(p.unsigned_client_envelope.as_slice()).unwrap();
    (u.originator_node_id, u.originator_sequence_id, c)
}

fn cursor(pairs: &[(u32, u64)]) -> Option<Cursor> {
    Some(Cursor {
        node_id_to_sequence_id: pairs.iter().copied().collect(),
    })
}

async fn query(d: &mut D14n, topics: Vec<Vec<u8>>, last_seen: Option<Cursor>) -> Vec<(u32, u64)> {
    let r = d
        .node
        .query_envelopes(QueryEnvelopesRequest {
            query: Some(EnvelopesQuery {
                topics,
                originator_node_ids: vec![],
                last_seen,
            }),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    r.envelopes
        .iter()
        .map(|e| {
            let (o, s, _) = open(e);
            (o, s)
        })
        .collect()
}

#[tokio::test]
async fn gateway_writes_are_read_with_one_cursor_per_originator() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let g = [4u8; 16];
    let published = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![
                group_envelope(&g, private_message(&g, COMMIT, "c1")),
                group_envelope(&g, private_message(&g, APPLICATION, "a2")),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let answered: Vec<_> = published
        .originator_envelopes
        .iter()
        .map(|e| (open(e).0, open(e).1))
        .collect();
    assert_eq!(
        answered,
        [(0, 1), (10, 2)],
        "commit -> 0, application -> 10"
    );
    // Through v3 as well; both APIs share the ids.
    send(&mut v3, &g, &["a3"]).await;
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, private_message(&g, COMMIT, "c4"))],
        })
        .await
        .unwrap();
    let v3_ids: Vec<u64> = v3
        .mls
        .query_group_messages(QueryGroupMessagesRequest {
            group_id: g.to_vec(),
            paging_info: None,
        })
        .await
        .unwrap()
        .into_inner()
        .messages
        .iter()
        .map(|m| v1(m).id)
        .collect();
    assert_eq!(v3_ids, [4, 3, 2, 1]);

    let t = vec![topic(0, &g)];
    assert_eq!(
        query(&mut d, t.clone(), None).await,
        [(0, 1), (10, 2), (10, 3), (0, 4)]
    );
    assert_eq!(
        query(&mut d, t.clone(), cursor(&[(0, 4)])).await,
        [(10, 2), (10, 3)],
        "a commit position says nothing about application messages"
    );
    assert_eq!(
        query(&mut d, t.clone(), cursor(&[(0, 1), (10, 3)])).await,
        [(0, 4)]
    );
    // The payload comes back as published, addressed to its topic.
    let r = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest {
            topics: vec![topic(0, &g), topic(0, &[9; 16])],
        })
        .await
        .unwrap()
        .into_inner();
    let newest = r.results[0].originator_envelope.as_ref().unwrap();
    let (_, seq, client) = open(newest);
    assert_eq!(seq, 4);
    assert_eq!(
        client,
        group_envelope(&g, private_message(&g, COMMIT, "c4"))
    );
    assert!(r.results[1].originator_envelope.is_none());
    node.shutdown().await;
}

#[tokio::test]
async fn envelopes_whose_topic_is_not_their_payloads_are_refused_whole() {
    let (node, _) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let (g, other) = ([5u8; 16], [6u8; 16]);
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![
                group_envelope(&g, private_message(&g, APPLICATION, "fine")),
                envelope(
                    topic(0, &other),
                    Payload::GroupMessage(input(private_message(&g, APPLICATION, "x"))),
                ),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(query(&mut d, vec![topic(0, &g)], None).await.is_empty());
    let no_aad = ClientEnvelope {
        aad: None,
        payload: Some(Payload::GroupMessage(input(private_message(
            &g,
            APPLICATION,
            "y",
        )))),
    };
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![no_aad],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Invalid MLS is refused by the v3 validation too.
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, vec![0, 1, 0, 2])],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    node.shutdown().await;
}

#[tokio::test]
async fn nodes_health_and_key_packages() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let nodes = d
        .gateway
        .get_nodes(GetNodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), [(100, node.url())]);
    let status = d
        .health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let key = installation(7);
    let kp = key_package(&key, &"ab".repeat(32));
    let installation_key = key.verifying_key().to_bytes().to_vec();
    let upload = UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: kp.clone(),
        }),
        is_inbox_id_credential: true,
    };
    let wrong = envelope(
        topic(3, &[1; 32]),
        Payload::UploadKeyPackage(upload.clone()),
    );
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![wrong],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let right = envelope(
        topic(3, &installation_key),
        Payload::UploadKeyPackage(upload),
    );
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![right],
        })
        .await
        .unwrap();
    let fetched = v3
        .mls
        .fetch_key_packages(FetchKeyPackagesRequest {
            installation_keys: vec![installation_key.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.key_packages[0].key_package_tls_serialized, kp);
    let r = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest {
            topics: vec![topic(3, &installation_key)],
        })
        .await
        .unwrap()
        .into_inner();
    let (originator, _, client) = open(r.results[0].originator_envelope.as_ref().unwrap());
    assert_eq!(originator, 13);
    let Some(Payload::UploadKeyPackage(u)) = client.payload else {
        panic!("not a key package: {client:?}")
    };
    assert_eq!(u.key_package.unwrap().key_package_tls_serialized, kp);
    node.shutdown().await;
}

#[tokio::test]
async fn subscriptions_replay_after_each_originators_position_then_stream() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let g = [8u8; 16];
    send(&mut v3, &g, &["a1", "a2"]).await;
    let mut stream = d
        .node
        .subscribe_envelopes(SubscribeEnvelopesRequest {
            query: Some(EnvelopesQuery {
                topics: vec![topic(0, &g)],
                originator_node_ids: vec![],
                last_seen: cursor(&[(10, 1)]),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        let batch = stream.next().await.unwrap().unwrap();
        batch
            .envelopes
            .iter()
            .map(|e| (open(e).0, open(e).1))
            .collect::<Vec<_>>()
    };
    assert_eq!(next().await, [(10, 2)], "replay after the cursor");
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, private_message(&g, COMMIT, "c3"))],
        })
        .await
        .unwrap();
    assert_eq!(next().await, [(0, 3)], "then live");
    let err = d
        .node
        .subscribe_envelopes(SubscribeEnvelopesRequest {
            query: Some(EnvelopesQuery::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    node.shutdown().await;
}

#[tokio::test]
async fn a_restarted_data_node_serves_the_same_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let config = || xmtp_devnode::DevNodeConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..xmtp_devnode::DevNodeConfig::default()
    };
    let g = [3u8; 16];
    let key = installation(9);
    let installation_key = key.verifying_key().to_bytes().to_vec();
    let upload = UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: key_package(&key, &"cd".repeat(32)),
        }),
        is_inbox_id_credential: true,
    };
    let topics = vec![topic(0, &g), topic(3, &installation_key)];
    let before = {
        let (node, _) = start(config()).await;
        let mut d = d14n(node.url()).await;
        d.gateway
            .publish_client_envelopes(PublishClientEnvelopesRequest {
                envelopes: vec![
                    group_envelope(&g, private_message(&g, APPLICATION, "kept")),
                    envelope(
                        topic(3, &installation_key),
                        Payload::UploadKeyPackage(upload),
                    ),
                ],
            })
            .await
            .unwrap();
        let r = d
            .node
            .get_newest_envelope(GetNewestEnvelopeRequest {
                topics: topics.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        node.shutdown().await;
        r
    };
    let (node, _) = start(config()).await;
    let mut d = d14n(node.url()).await;
    let after = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest { topics })
        .await
        .unwrap()
        .into_inner();
    let ids = |r: &xmtp_proto::d14n_message_api::GetNewestEnvelopeResponse| {
        r.results
            .iter()
            .map(|x| {
                let (o, s, _) = open(x.originator_envelope.as_ref().unwrap());
                (o, s)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&before), [(10, 1), (13, 1)]);
    assert_eq!(
        ids(&after),
        ids(&before),
        "same originators and sequence ids"
    );
    node.shutdown().await;
}
