//! `xmtp.xmtpv4.payer_api.PayerApi`: the gateway. It takes unsigned client envelopes, checks
//! that each one's `aad.target_topic` names its payload's topic, and hands the payload to the
//! v3 handler (same validation, store and ids); the answer wraps what was stored.

use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Response, Status};
use xmtp_proto::d14n_envelopes::{client_envelope::Payload, ClientEnvelope, OriginatorEnvelope};
use xmtp_proto::d14n_payer_api::payer_api_server::PayerApi;
use xmtp_proto::d14n_payer_api::{
    GetNodesRequest, GetNodesResponse, PublishClientEnvelopesRequest,
    PublishClientEnvelopesResponse,
};
use xmtp_proto::identity_api::identity_api_server::IdentityApi;
use xmtp_proto::identity_api::PublishIdentityUpdateRequest;
use xmtp_proto::mls_api::mls_api_server::MlsApi;
use xmtp_proto::mls_api::{
    group_message_input, welcome_message_input, SendGroupMessagesRequest,
    SendWelcomeMessagesRequest,
};

use super::{
    group_envelope, identity_envelope, key_package_envelope, welcome_envelope, Node, Topic, NODE_ID,
};
use crate::mls_wire::{parse_group_message, parse_key_package};

/// Sanity bound on envelopes per publish (libxmtp sends one per message of a batch).
const MAX_ENVELOPES: usize = 1_000;

/// The gateway side. `node_url` is what `GetNodes` lists for this node; by default
/// `http://` + the address the request arrived on.
#[derive(Clone)]
pub struct Gateway {
    node: Node,
    node_url: Option<String>,
}

impl Gateway {
    pub fn new(node: Node, node_url: Option<String>) -> Self {
        Self { node, node_url }
    }
}

#[tonic::async_trait]
impl PayerApi for Gateway {
    async fn publish_client_envelopes(
        &self,
        request: Request<PublishClientEnvelopesRequest>,
    ) -> Result<Response<PublishClientEnvelopesResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        if message.envelopes.len() > MAX_ENVELOPES {
            return Err(Status::invalid_argument("too many envelopes"));
        }
        // Check every topic before storing anything.
        let checked = message
            .envelopes
            .into_iter()
            .map(checked_payload)
            .collect::<Result<Vec<_>, _>>()?;
        let mut originator_envelopes = Vec::with_capacity(checked.len());
        for (topic, payload) in checked {
            let stored = self.publish(&metadata, &extensions, topic, payload).await?;
            originator_envelopes.extend(stored);
        }
        Ok(Response::new(PublishClientEnvelopesResponse {
            originator_envelopes,
        }))
    }

    async fn get_nodes(
        &self,
        request: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        let url = match (&self.node_url, request.local_addr()) {
            (Some(url), _) => url.clone(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => return Err(Status::internal("the node's own address is unknown")),
        };
        Ok(Response::new(GetNodesResponse {
            nodes: [(NODE_ID, url)].into(),
        }))
    }
}

/// The payload and the topic it names, refused when `aad.target_topic` names another.
fn checked_payload(envelope: ClientEnvelope) -> Result<(Topic, Payload), Status> {
    let target = envelope
        .aad
        .as_ref()
        .map(|a| a.target_topic.as_slice())
        .unwrap_or_default();
    let target = Topic::parse(target)
        .map_err(|s| Status::invalid_argument(format!("aad.target_topic: {}", s.message())))?;
    let payload = envelope
        .payload
        .ok_or_else(|| Status::invalid_argument("client envelope without a payload"))?;
    let actual = match &payload {
        Payload::GroupMessage(m) => match &m.version {
            Some(group_message_input::Version::V1(v)) => {
                let header = parse_group_message(&v.data)
                    .map_err(|e| Status::invalid_argument(format!("invalid group message: {e}")))?;
                Topic::Group(header.group_id)
            }
            None => return Err(Status::invalid_argument("group message without v1")),
        },
        Payload::WelcomeMessage(w) => match &w.version {
            Some(welcome_message_input::Version::V1(v)) => {
                Topic::Welcome(v.installation_key.clone())
            }
            Some(welcome_message_input::Version::WelcomePointer(p)) => {
                Topic::Welcome(p.installation_key.clone())
            }
            None => return Err(Status::invalid_argument("welcome without a version")),
        },
        Payload::UploadKeyPackage(k) => {
            let bytes = k
                .key_package
                .as_ref()
                .map(|k| k.key_package_tls_serialized.as_slice())
                .unwrap_or_default();
            let info = parse_key_package(bytes)
                .map_err(|e| Status::invalid_argument(format!("invalid key package: {e}")))?;
            Topic::KeyPackage(info.installation_key)
        }
        Payload::IdentityUpdate(u) => {
            if hex::decode(&u.inbox_id).is_err() {
                return Err(Status::invalid_argument(
                    "identity update: inbox id is not hex",
                ));
            }
            Topic::Identity(u.inbox_id.to_ascii_lowercase())
        }
    };
    if actual != target {
        return Err(Status::invalid_argument(
            "aad.target_topic does not match the payload's topic",
        ));
    }
    Ok((actual, payload))
}

impl Gateway {
    /// Runs the v3 handler for one payload (with the caller's metadata and connection, so the
    /// rate limit keys on the same client) and returns the stored envelope.
    async fn publish(
        &self,
        metadata: &MetadataMap,
        extensions: &Extensions,
        topic: Topic,
        payload: Payload,
    ) -> Result<Option<OriginatorEnvelope>, Status> {
        fn with<T>(metadata: &MetadataMap, extensions: &Extensions, message: T) -> Request<T> {
            Request::from_parts(metadata.clone(), extensions.clone(), message)
        }
        let node = &self.node;
        Ok(match (payload, topic) {
            (Payload::GroupMessage(input), Topic::Group(group_id)) => {
                let data = match &input.version {
                    Some(group_message_input::Version::V1(v)) => v.data.clone(),
                    None => Vec::new(),
                };
                let messages = vec![input];
                MlsApi::send_group_messages(
                    node,
                    with(metadata, extensions, SendGroupMessagesRequest { messages }),
                )
                .await?;
                node.store
                    .find_group_message(&group_id, &data)
                    .as_ref()
                    .and_then(group_envelope)
            }
            (Payload::WelcomeMessage(input), Topic::Welcome(key)) => {
                let data = match &input.version {
                    Some(welcome_message_input::Version::V1(v)) => v.data.clone(),
                    Some(welcome_message_input::Version::WelcomePointer(p)) => {
                        p.welcome_pointer.clone()
                    }
                    None => Vec::new(),
                };
                let messages = vec![input];
                MlsApi::send_welcome_messages(
                    node,
                    with(
                        metadata,
                        extensions,
                        SendWelcomeMessagesRequest { messages },
                    ),
                )
                .await?;
                node.store
                    .find_welcome(&key, &data)
                    .as_ref()
                    .and_then(welcome_envelope)
            }
            (Payload::UploadKeyPackage(upload), Topic::KeyPackage(key)) => {
                MlsApi::upload_key_package(node, with(metadata, extensions, upload)).await?;
                node.store
                    .key_package_with_id(&key)
                    .map(|(id, bytes)| key_package_envelope(&key, id, bytes))
            }
            (Payload::IdentityUpdate(update), Topic::Identity(inbox_id)) => {
                let published = PublishIdentityUpdateRequest {
                    identity_update: Some(update.clone()),
                };
                IdentityApi::publish_identity_update(node, with(metadata, extensions, published))
                    .await?;
                node.store
                    .identity_updates(&inbox_id, 0)
                    .iter()
                    .rev()
                    .find(|l| l.update.as_ref() == Some(&update))
                    .and_then(identity_envelope)
            }
            _ => return Err(Status::internal("payload and topic disagree")),
        })
    }
}
