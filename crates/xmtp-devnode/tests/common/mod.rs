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

/// A KeyPackage prefix the node parses: version, suite, init key, leaf keys, credential.
pub fn key_package(installation_key: &[u8; 32], inbox_id: &str, salt: u8) -> Vec<u8> {
    let cred = MlsCredential {
        inbox_id: inbox_id.to_owned(),
    }
    .encode_to_vec();
    let mut kp = vec![0, 1, 0, 3, 32];
    kp.extend_from_slice(&[salt; 32]);
    kp.push(32);
    kp.extend_from_slice(&[salt ^ 0xff; 32]);
    kp.push(32);
    kp.extend_from_slice(installation_key);
    kp.extend_from_slice(&[0, 1, 0x40, cred.len() as u8]);
    kp.extend_from_slice(&cred);
    kp.extend_from_slice(&[salt; 8]);
    kp
}

pub const T: u64 = 1_717_194_525_000_000_000;

pub fn wallet(n: u8) -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[n; 32].into()).unwrap()
}

pub fn installation(n: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[n; 32])
}
