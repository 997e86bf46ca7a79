//! Shared helpers for the devnode's black-box tests: start a node on 127.0.0.1:0, connect
//! tonic clients, and build minimal MLS byte strings the node can parse.
#![allow(dead_code)]

use prost::Message;
use tonic::transport::Channel;
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle};
use xmtp_proto::identity_api::identity_api_client::IdentityApiClient;
use xmtp_proto::mls_api::mls_api_client::MlsApiClient;
use xmtp_proto::mls_api::{
    group_message, group_message_input, GroupMessage, GroupMessageInput, SendGroupMessagesRequest,
};
use xmtp_proto::xmtp::identity::MlsCredential;

pub const COMMIT: u8 = 3;
pub const APPLICATION: u8 = 1;

pub struct Clients {
    pub mls: MlsApiClient<Channel>,
    pub identity: IdentityApiClient<Channel>,
}

pub async fn start(config: DevNodeConfig) -> (DevNodeHandle, Clients) {
    let node = DevNode::start(config).await.expect("devnode starts");
    let clients = connect(&node).await;
    (node, clients)
}

pub async fn start_memory() -> (DevNodeHandle, Clients) {
    start(DevNodeConfig::default()).await
}

pub async fn connect(node: &DevNodeHandle) -> Clients {
    let channel = Channel::from_shared(node.url())
        .unwrap()
        .connect()
        .await
        .expect("connects");
    Clients {
        mls: MlsApiClient::new(channel.clone()),
        identity: IdentityApiClient::new(channel),
    }
}

/// An MLSMessage(PrivateMessage) header plus an opaque body unique to `tag`.
pub fn private_message(group_id: &[u8], content_type: u8, tag: &str) -> Vec<u8> {
    let mut out = vec![0, 1, 0, 2, group_id.len() as u8];
    out.extend_from_slice(group_id);
    out.extend_from_slice(&7u64.to_be_bytes());
    out.push(content_type);
    // authenticated_data (empty), encrypted_sender_data, ciphertext (the tag).
    out.extend_from_slice(&[0, 2, 0xee, 0xee]);
    out.push(tag.len() as u8);
    out.extend_from_slice(tag.as_bytes());
    out
}

pub fn input(data: Vec<u8>) -> GroupMessageInput {
    GroupMessageInput {
        version: Some(group_message_input::Version::V1(group_message_input::V1 {
            data,
            sender_hmac: vec![1; 32],
            should_push: true,
        })),
    }
}

/// Sends one application message per tag to `group_id`.
pub async fn send(c: &mut Clients, group_id: &[u8], tags: &[&str]) {
    let messages = tags
        .iter()
        .map(|t| input(private_message(group_id, APPLICATION, t)))
        .collect();
    c.mls
        .send_group_messages(SendGroupMessagesRequest { messages })
        .await
        .expect("send");
}

pub fn v1(m: &GroupMessage) -> &group_message::V1 {
    match &m.version {
        Some(group_message::Version::V1(v)) => v,
        None => panic!("group message without v1"),
    }
}

/// A real, signed MLS KeyPackage (ciphersuite 3, BasicCredential = XMTP MlsCredential) for
/// the installation key; every call has fresh init and encryption keys.
pub fn key_package(installation: &ed25519_dalek::SigningKey, inbox_id: &str) -> Vec<u8> {
    use openmls::prelude::*;
    use tls_codec::Serialize as _;

    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let identity = MlsCredential {
        inbox_id: inbox_id.to_owned(),
    }
    .encode_to_vec();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity).into(),
        signature_key: installation.verifying_key().to_bytes().to_vec().into(),
    };
    let suite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
    let bundle = KeyPackage::builder()
        .build(
            suite,
            &provider,
            &EdSigner(installation.clone()),
            credential,
        )
        .expect("key package builds");
    bundle
        .key_package()
        .tls_serialize_detached()
        .expect("serializes")
}

/// MLS signs with pure Ed25519 over the encoded SignContent.
struct EdSigner(ed25519_dalek::SigningKey);

impl openmls_traits::signatures::Signer for EdSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, openmls_traits::signatures::SignerError> {
        use ed25519_dalek::Signer as _;
        Ok(self.0.sign(payload).to_bytes().to_vec())
    }

    fn signature_scheme(&self) -> openmls_traits::types::SignatureScheme {
        openmls_traits::types::SignatureScheme::ED25519
    }
}

pub const T: u64 = 1_717_194_525_000_000_000;

pub fn wallet(n: u8) -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[n; 32].into()).unwrap()
}

pub fn installation(n: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[n; 32])
}

/// The inbox id registered for an Ethereum `address`, if any.
pub async fn inbox_of(c: &mut Clients, address: &str) -> Option<String> {
    use xmtp_proto::associations_proto::IdentifierKind;
    use xmtp_proto::identity_api::{get_inbox_ids_request, GetInboxIdsRequest};
    let request = GetInboxIdsRequest {
        requests: vec![get_inbox_ids_request::Request {
            identifier: address.to_owned(),
            identifier_kind: IdentifierKind::Ethereum as i32,
        }],
    };
    let r = c
        .identity
        .get_inbox_ids(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].identifier, address);
    r.responses[0].inbox_id.clone()
}

/// The identity updates of one inbox after sequence id `after`, as the node returns them.
pub async fn identity_updates(
    c: &mut Clients,
    inbox_id: &str,
    after: u64,
) -> Vec<xmtp_proto::identity_api::get_identity_updates_response::IdentityUpdateLog> {
    use xmtp_proto::identity_api::{get_identity_updates_request, GetIdentityUpdatesRequest};
    let request = GetIdentityUpdatesRequest {
        requests: vec![get_identity_updates_request::Request {
            inbox_id: inbox_id.into(),
            sequence_id: after,
        }],
    };
    let r = c
        .identity
        .get_identity_updates(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.responses[0].inbox_id, inbox_id);
    r.responses.into_iter().next().unwrap().updates
}
