//! Envelopes: topics, client envelopes for writes, and originator envelopes unwrapped into
//! the v3 response types.

use std::collections::HashMap;

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{MlsMessageBodyIn, MlsMessageIn, ProtocolMessage};
use prost::Message as _;
use tonic::transport::Channel;
use xmtp_proto::d14n_envelopes::{
    client_envelope::Payload, AuthenticatedData, ClientEnvelope, OriginatorEnvelope, PayerEnvelope,
    UnsignedOriginatorEnvelope,
};
use xmtp_proto::grpc::health::v1::health_check_response::ServingStatus;
use xmtp_proto::grpc::health::v1::health_client::HealthClient;
use xmtp_proto::grpc::health::v1::HealthCheckRequest;
use xmtp_proto::mls_api::{
    group_message, group_message_input, welcome_message, welcome_message_input, GroupMessage,
    GroupMessageInput, SortDirection, WelcomeMessage, WelcomeMessageInput,
};

use super::{channel, COMMITS, HEALTH_TIMEOUT, IDENTITY, MAX_PAGE};
use crate::transport::{TlsOptions, TransportError};

/// Whether a streamed envelope is past its topic's own start (the common start is lower).
pub(super) fn fresh(own: &HashMap<Vec<u8>, HashMap<u32, u64>>, o: &Opened) -> bool {
    own.get(&o.topic)
        .is_some_and(|start| o.sequence_id > start.get(&o.originator).copied().unwrap_or(0))
}

/// Checks one node's health; its channel when SERVING.
pub(super) async fn healthy(url: &str, tls: &TlsOptions) -> Result<Channel, String> {
    let ch = channel(url, tls).map_err(|e| e.to_string())?;
    let mut health = HealthClient::new(ch.clone());
    let check = health.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(HEALTH_TIMEOUT, check).await {
        Err(_) => Err(format!("no health answer within {HEALTH_TIMEOUT:?}")),
        Ok(Err(s)) => Err(format!("health check failed: {}", s.message())),
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => Ok(ch),
        Ok(Ok(r)) => Err(format!("not serving (status {})", r.get_ref().status)),
    }
}

/// An envelope read from a node, unwrapped.
#[derive(Debug, Clone)]
pub(super) struct Opened {
    pub(super) originator: u32,
    pub(super) sequence_id: u64,
    pub(super) ns: i64,
    pub(super) topic: Vec<u8>,
    pub(super) payload: Option<Payload>,
}

pub(super) fn open(e: &OriginatorEnvelope) -> Result<Opened, TransportError> {
    let bad =
        |what: &str, err: prost::DecodeError| TransportError::Envelope(format!("{what}: {err}"));
    let unsigned = UnsignedOriginatorEnvelope::decode(e.unsigned_originator_envelope.as_slice())
        .map_err(|err| bad("originator envelope", err))?;
    let payer = PayerEnvelope::decode(unsigned.payer_envelope_bytes.as_slice())
        .map_err(|err| bad("payer envelope", err))?;
    let client = ClientEnvelope::decode(payer.unsigned_client_envelope.as_slice())
        .map_err(|err| bad("client envelope", err))?;
    Ok(Opened {
        originator: unsigned.originator_node_id,
        sequence_id: unsigned.originator_sequence_id,
        ns: unsigned.originator_ns,
        topic: client.aad.map(|a| a.target_topic).unwrap_or_default(),
        payload: client.payload,
    })
}

pub(super) fn topic(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(1 + id.len());
    t.push(kind);
    t.extend_from_slice(id);
    t
}

pub(super) fn envelope(target_topic: Vec<u8>, payload: Payload) -> ClientEnvelope {
    ClientEnvelope {
        aad: Some(AuthenticatedData {
            target_topic,
            depends_on: None,
        }),
        payload: Some(payload),
    }
}

pub(super) fn inbox_topic(inbox_id: &str) -> Result<Vec<u8>, TransportError> {
    let id = hex::decode(inbox_id)
        .map_err(|_| TransportError::Envelope(format!("inbox id {inbox_id:?} is not hex")))?;
    Ok(topic(IDENTITY, &id))
}

/// The group id in an MLSMessage's cleartext header.
pub(super) fn group_of(data: &[u8]) -> Result<Vec<u8>, TransportError> {
    let bad = |e: String| TransportError::Envelope(format!("group message: {e}"));
    let msg = MlsMessageIn::tls_deserialize_exact(data).map_err(|e| bad(e.to_string()))?;
    let protocol: ProtocolMessage = match msg.extract() {
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        MlsMessageBodyIn::PublicMessage(m) => m.into(),
        _ => return Err(bad("not a private or public message".into())),
    };
    Ok(protocol.group_id().as_slice().to_vec())
}

pub(super) fn ns(o: &Opened) -> u64 {
    u64::try_from(o.ns).unwrap_or(0)
}

pub(super) fn to_group_message(o: Opened) -> Option<GroupMessage> {
    let Some(Payload::GroupMessage(GroupMessageInput {
        version: Some(group_message_input::Version::V1(v)),
    })) = o.payload.clone()
    else {
        return None;
    };
    Some(GroupMessage {
        version: Some(group_message::Version::V1(group_message::V1 {
            id: o.sequence_id,
            created_ns: ns(&o),
            group_id: o.topic.get(1..).unwrap_or_default().to_vec(),
            data: v.data,
            sender_hmac: v.sender_hmac,
            should_push: v.should_push,
            is_commit: o.originator == COMMITS,
        })),
    })
}

pub(super) fn to_welcome(o: Opened) -> Option<WelcomeMessage> {
    let Some(Payload::WelcomeMessage(WelcomeMessageInput { version: Some(v) })) = o.payload.clone()
    else {
        return None;
    };
    let version = match v {
        welcome_message_input::Version::V1(w) => {
            welcome_message::Version::V1(welcome_message::V1 {
                id: o.sequence_id,
                created_ns: ns(&o),
                installation_key: w.installation_key,
                data: w.data,
                hpke_public_key: w.hpke_public_key,
                wrapper_algorithm: w.wrapper_algorithm,
                welcome_metadata: w.welcome_metadata,
            })
        }
        welcome_message_input::Version::WelcomePointer(p) => {
            welcome_message::Version::WelcomePointer(welcome_message::WelcomePointer {
                id: o.sequence_id,
                created_ns: ns(&o),
                installation_key: p.installation_key,
                welcome_pointer: p.welcome_pointer,
                hpke_public_key: p.hpke_public_key,
                wrapper_algorithm: p.wrapper_algorithm,
            })
        }
    };
    Some(WelcomeMessage {
        version: Some(version),
    })
}

pub(super) fn ascending(direction: i32) -> bool {
    direction == SortDirection::Ascending as i32
}

pub(super) fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    }
}

pub(super) fn id_of(m: &GroupMessage) -> u64 {
    match &m.version {
        Some(group_message::Version::V1(v)) => v.id,
        None => 0,
    }
}
