//! The d14n API of the devnode (docs/D14N.md): gateway publish with topic checks, reads with
//! one cursor per originator under libxmtp's v3-compatibility originator ids, the node list,
//! the health check, and a subscription that replays and then streams. Writes through one API
//! are read through the other (one store).

#[path = "../common/mod.rs"]
mod common;
mod nodes;
mod publish;
mod replay;

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
