//! The decentralized network's API (d14n, docs/D14N.md) over the same store as the v3 API.
//!
//! One listener serves both the gateway (`PayerApi`: publish, node list) and the node
//! (`ReplicationApi`: query, subscribe, inbox ids, newest envelope; `grpc.health.v1`), so a
//! client given this node's URL as `gatewayHost` finds itself again in `GetNodes`.
//!
//! Writes are unwrapped and handed to the v3 handlers (same validation, same store, same
//! ids). Reads wrap stored v3 records into originator envelopes under libxmtp's fixed
//! v3-compatibility originator ids (`xmtp_configuration::Originators`): what a v3 client
//! stored is what a d14n client reads, with the cursors libxmtp itself derives from v3 ids.
//! Envelopes carry no signatures or fees (the SDK checks neither).

mod gateway;
mod health;
mod replication;

use prost::Message;
use tonic::Status;
use xmtp_proto::d14n_envelopes::{
    client_envelope::Payload, AuthenticatedData, ClientEnvelope, Cursor, OriginatorEnvelope,
    PayerEnvelope, UnsignedOriginatorEnvelope,
};
use xmtp_proto::identity_api::get_identity_updates_response::IdentityUpdateLog;
use xmtp_proto::mls_api::{
    group_message, group_message_input, welcome_message, welcome_message_input, GroupMessage,
    GroupMessageInput, KeyPackageUpload, UploadKeyPackageRequest, WelcomeMessage,
    WelcomeMessageInput,
};

use super::Node;

pub use gateway::Gateway;
pub use health::Health;

use xmtp_proto::d14n_message_api::replication_api_server::ReplicationApiServer;
use xmtp_proto::d14n_payer_api::payer_api_server::PayerApiServer;
use xmtp_proto::grpc::health::v1::health_server::HealthServer;

/// The three d14n services for the router, sharing `node`'s store; `max_bytes` bounds
/// messages both ways. `node_url` is the URL `GetNodes` lists for this node (clients read
/// from it); `None` means `http://` + the local address each request arrived on, right for
/// cleartext on a directly reachable address. Behind TLS, NAT or a container port mapping,
/// pass the URL clients must dial (e.g. `https://node.example:5556`).
pub fn servers(
    node: Node,
    max_bytes: usize,
    node_url: Option<String>,
) -> (
    PayerApiServer<Gateway>,
    ReplicationApiServer<Replication>,
    HealthServer<Health>,
) {
    let gateway = PayerApiServer::new(Gateway::new(node.clone(), node_url))
        .max_decoding_message_size(max_bytes)
        .max_encoding_message_size(max_bytes);
    let replication = ReplicationApiServer::new(Replication::new(node))
        .max_decoding_message_size(max_bytes)
        .max_encoding_message_size(max_bytes);
    (gateway, replication, HealthServer::new(Health))
}

/// This node's id in `GetNodes` (libxmtp's `Originators::DEFAULT`, "for local and tests").
pub const NODE_ID: u32 = 100;

/// libxmtp's fixed originator ids for v3 data (`common/d14n.rs`).
pub mod originator {
    /// MLS commits.
    pub const COMMITS: u32 = 0;
    /// Identity updates.
    pub const INBOX_LOG: u32 = 1;
    /// Application (non-commit) group messages.
    pub const APPLICATION: u32 = 10;
    /// Welcomes.
    pub const WELCOMES: u32 = 11;
    /// Key packages.
    pub const KEY_PACKAGES: u32 = 13;
}

/// The ReplicationApi side (shares [`Node`]).
#[derive(Clone)]
pub struct Replication {
    node: Node,
}

impl Replication {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

/// A parsed topic: one kind byte, then the identifier (XIP-49).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// 0: a group id.
    Group(Vec<u8>),
    /// 1: an installation key.
    Welcome(Vec<u8>),
    /// 2: an inbox id (kept as the usual lowercase hex string).
    Identity(String),
    /// 3: an installation key.
    KeyPackage(Vec<u8>),
}

impl Topic {
    pub fn parse(bytes: &[u8]) -> Result<Self, Status> {
        let Some((&kind, id)) = bytes.split_first() else {
            return Err(Status::invalid_argument("empty topic"));
        };
        if id.is_empty() {
            return Err(Status::invalid_argument("topic without an identifier"));
        }
        Ok(match kind {
            0 => Topic::Group(id.to_vec()),
            1 => Topic::Welcome(id.to_vec()),
            2 => Topic::Identity(hex::encode(id)),
            3 => Topic::KeyPackage(id.to_vec()),
            k => return Err(Status::invalid_argument(format!("unknown topic kind {k}"))),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let (kind, id): (u8, Vec<u8>) = match self {
            Topic::Group(g) => (0, g.clone()),
            Topic::Welcome(k) => (1, k.clone()),
            Topic::Identity(i) => (2, hex::decode(i).unwrap_or_else(|_| i.as_bytes().to_vec())),
            Topic::KeyPackage(k) => (3, k.clone()),
        };
        let mut out = Vec::with_capacity(1 + id.len());
        out.push(kind);
        out.extend_from_slice(&id);
        out
    }
}

/// The position of `originator` in `cursor` (0 when absent).
pub fn position(cursor: Option<&Cursor>, originator: u32) -> u64 {
    cursor
        .and_then(|c| c.node_id_to_sequence_id.get(&originator).copied())
        .unwrap_or(0)
}

/// Wraps a client envelope as the gateway and originator would (no signatures, no fees).
fn wrap(originator: u32, sequence_id: u64, ns: u64, client: &ClientEnvelope) -> OriginatorEnvelope {
    let payer = PayerEnvelope {
        unsigned_client_envelope: client.encode_to_vec(),
        payer_signature: None,
        target_originator: NODE_ID,
        message_retention_days: 0,
    };
    let unsigned = UnsignedOriginatorEnvelope {
        originator_node_id: originator,
        originator_sequence_id: sequence_id,
        originator_ns: i64::try_from(ns).unwrap_or(i64::MAX),
        payer_envelope_bytes: payer.encode_to_vec(),
        base_fee_picodollars: 0,
        congestion_fee_picodollars: 0,
        expiry_unixtime: 0,
    };
    OriginatorEnvelope {
        unsigned_originator_envelope: unsigned.encode_to_vec(),
        proof: None,
    }
}

fn client(topic: Topic, payload: Payload) -> ClientEnvelope {
    ClientEnvelope {
        aad: Some(AuthenticatedData {
            target_topic: topic.to_bytes(),
            depends_on: None,
        }),
        payload: Some(payload),
    }
}

/// The originator a stored group message is served under.
pub fn group_originator(v: &group_message::V1) -> u32 {
    if v.is_commit {
        originator::COMMITS
    } else {
        originator::APPLICATION
    }
}

pub fn group_envelope(m: &GroupMessage) -> Option<OriginatorEnvelope> {
    let Some(group_message::Version::V1(v)) = &m.version else {
        return None;
    };
    let payload = Payload::GroupMessage(GroupMessageInput {
        version: Some(group_message_input::Version::V1(group_message_input::V1 {
            data: v.data.clone(),
            sender_hmac: v.sender_hmac.clone(),
            should_push: v.should_push,
        })),
    });
    let c = client(Topic::Group(v.group_id.clone()), payload);
    Some(wrap(group_originator(v), v.id, v.created_ns, &c))
}

pub fn welcome_envelope(m: &WelcomeMessage) -> Option<OriginatorEnvelope> {
    let (key, id, ns, version) = match m.version.as_ref()? {
        welcome_message::Version::V1(v) => (
            &v.installation_key,
            v.id,
            v.created_ns,
            welcome_message_input::Version::V1(welcome_message_input::V1 {
                installation_key: v.installation_key.clone(),
                data: v.data.clone(),
                hpke_public_key: v.hpke_public_key.clone(),
                wrapper_algorithm: v.wrapper_algorithm,
                welcome_metadata: v.welcome_metadata.clone(),
            }),
        ),
        welcome_message::Version::WelcomePointer(p) => (
            &p.installation_key,
            p.id,
            p.created_ns,
            welcome_message_input::Version::WelcomePointer(welcome_message_input::WelcomePointer {
                installation_key: p.installation_key.clone(),
                welcome_pointer: p.welcome_pointer.clone(),
                hpke_public_key: p.hpke_public_key.clone(),
                wrapper_algorithm: p.wrapper_algorithm,
            }),
        ),
    };
    let payload = Payload::WelcomeMessage(WelcomeMessageInput {
        version: Some(version),
    });
    let c = client(Topic::Welcome(key.clone()), payload);
    Some(wrap(originator::WELCOMES, id, ns, &c))
}

pub fn identity_envelope(log: &IdentityUpdateLog) -> Option<OriginatorEnvelope> {
    let update = log.update.as_ref()?;
    let c = client(
        Topic::Identity(update.inbox_id.clone()),
        Payload::IdentityUpdate(update.clone()),
    );
    Some(wrap(
        originator::INBOX_LOG,
        log.sequence_id,
        log.server_timestamp_ns,
        &c,
    ))
}

pub fn key_package_envelope(
    installation_key: &[u8],
    id: u64,
    bytes: Vec<u8>,
) -> OriginatorEnvelope {
    let c = client(
        Topic::KeyPackage(installation_key.to_vec()),
        Payload::UploadKeyPackage(UploadKeyPackageRequest {
            key_package: Some(KeyPackageUpload {
                key_package_tls_serialized: bytes,
            }),
            is_inbox_id_credential: true,
        }),
    );
    wrap(originator::KEY_PACKAGES, id, 0, &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_inbox_ids_are_hex_decoded() {
        let inbox = "ab".repeat(32);
        let t = Topic::Identity(inbox.clone());
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), 33);
        assert_eq!(bytes[0], 2);
        assert_eq!(Topic::parse(&bytes).unwrap(), t);
        assert_eq!(Topic::parse(&[0, 1, 2]).unwrap(), Topic::Group(vec![1, 2]));
        assert!(Topic::parse(&[4, 1]).is_err());
        assert!(Topic::parse(&[1]).is_err());
        assert!(Topic::parse(&[]).is_err());
    }

    #[test]
    fn commits_and_application_messages_get_libxmtps_originators() {
        let mut v = group_message::V1 {
            id: 7,
            created_ns: 9,
            group_id: vec![1; 16],
            data: vec![5],
            ..Default::default()
        };
        assert_eq!(group_originator(&v), originator::APPLICATION);
        v.is_commit = true;
        assert_eq!(group_originator(&v), originator::COMMITS);
        let env = group_envelope(&GroupMessage {
            version: Some(group_message::Version::V1(v)),
        })
        .unwrap();
        let u = UnsignedOriginatorEnvelope::decode(env.unsigned_originator_envelope.as_slice())
            .unwrap();
        assert_eq!(
            (
                u.originator_node_id,
                u.originator_sequence_id,
                u.originator_ns
            ),
            (0, 7, 9)
        );
        let p = PayerEnvelope::decode(u.payer_envelope_bytes.as_slice()).unwrap();
        let c = ClientEnvelope::decode(p.unsigned_client_envelope.as_slice()).unwrap();
        assert_eq!(c.aad.unwrap().target_topic, [&[0u8][..], &[1; 16]].concat());
    }
}
