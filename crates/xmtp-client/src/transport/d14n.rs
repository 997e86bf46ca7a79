//! [`Transport`] over XMTP's decentralized network (d14n), as libxmtp 1.10 speaks it
//! (docs/D14N.md).
//!
//! Writes become unsigned `ClientEnvelope`s (the v3 payload, `aad.target_topic` = kind byte +
//! id) published through the gateway's `PayerApi/PublishClientEnvelopes`; the gateway pays.
//! Reads go to a node the gateway lists in `GetNodes` (the first, by id, that passes the
//! `grpc.health.v1` check), through `ReplicationApi`; the originator → payer → client envelope
//! nesting is unwrapped back into the v3 response types.
//!
//! Cursors: d14n keeps one position per originator. The v3-shaped [`Transport`] carries one id
//! per topic, so a message's id is its `originator_sequence_id` and the transport remembers,
//! per topic, the per-originator cursor behind the last id it handed out; a query from that id
//! continues exactly there. A query from any other id (e.g. after a restart) starts from that
//! id for libxmtp's v3-compatibility originators (0 and 10 for groups, 11 for welcomes; exact
//! on herald's devnode and on v3 data migrated to d14n) and from the beginning for every other
//! originator, so it may repeat messages but never skips one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, ProtocolMessage};
use prost::Message as _;
use tokio::sync::OnceCell;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::TlsOptions;
use xmtp_proto::d14n_envelopes::{
    client_envelope::Payload, AuthenticatedData, ClientEnvelope, Cursor, OriginatorEnvelope,
    PayerEnvelope, UnsignedOriginatorEnvelope,
};
use xmtp_proto::d14n_message_api::replication_api_client::ReplicationApiClient;
use xmtp_proto::d14n_message_api::{
    get_inbox_ids_request, EnvelopesQuery, GetInboxIdsRequest as V4InboxIdsRequest,
    GetNewestEnvelopeRequest, QueryEnvelopesRequest, SubscribeEnvelopesRequest,
};
use xmtp_proto::d14n_payer_api::payer_api_client::PayerApiClient;
use xmtp_proto::d14n_payer_api::{GetNodesRequest, PublishClientEnvelopesRequest};
use xmtp_proto::grpc::health::v1::health_check_response::ServingStatus;
use xmtp_proto::grpc::health::v1::health_client::HealthClient;
use xmtp_proto::grpc::health::v1::HealthCheckRequest;
use xmtp_proto::identity_api::get_identity_updates_response::{self, IdentityUpdateLog};
use xmtp_proto::identity_api::{
    get_inbox_ids_response, GetIdentityUpdatesRequest, GetIdentityUpdatesResponse,
    GetInboxIdsRequest, GetInboxIdsResponse, PublishIdentityUpdateRequest,
};
use xmtp_proto::mls_api::{
    fetch_key_packages_response, group_message, group_message_input, welcome_message,
    welcome_message_input, FetchKeyPackagesRequest, FetchKeyPackagesResponse, GroupMessage,
    GroupMessageInput, QueryGroupMessagesRequest, QueryGroupMessagesResponse,
    QueryWelcomeMessagesRequest, QueryWelcomeMessagesResponse, SendGroupMessagesRequest,
    SendWelcomeMessagesRequest, SortDirection, UploadKeyPackageRequest, WelcomeMessage,
    WelcomeMessageInput,
};

use super::{GroupArrival, GroupStream, TopicStream, Transport, TransportError, MAX_MESSAGE_BYTES};

/// XMTP's d14n networks by libxmtp 1.10's names (`xmtp_configuration::GrpcUrls{Dev,Staging,
/// Production}`, `XmtpEnv`): (name, gateway URL, node URL). The gateway lists the nodes
/// itself, so only its URL is needed; the node URL is for diagnostics. `mainnet` is a name in
/// libxmtp 1.10 without URLs yet.
pub const NETWORKS: [(&str, &str, &str); 3] = [
    (
        "testnet-dev",
        "https://payer.testnet-dev.xmtp.network:443",
        "https://grpc.testnet-dev.xmtp.network:443",
    ),
    (
        "testnet-staging",
        "https://payer.testnet-staging.xmtp.network:443",
        "https://grpc.testnet-staging.xmtp.network:443",
    ),
    (
        "testnet",
        "https://payer.testnet.xmtp.network:443",
        "https://grpc.testnet.xmtp.network:443",
    ),
];

/// The gateway URL of a d14n network named as libxmtp names it (see [`NETWORKS`]).
pub fn gateway_for(network: &str) -> Option<&'static str> {
    NETWORKS
        .iter()
        .find(|(name, _, _)| *name == network)
        .map(|(_, gateway, _)| *gateway)
}

/// Topic kind bytes (XIP-49).
const GROUP: u8 = 0;
const WELCOME: u8 = 1;
const IDENTITY: u8 = 2;
const KEY_PACKAGE: u8 = 3;

/// libxmtp's fixed originator ids for v3-compatible data (`xmtp_configuration::Originators`).
const COMMITS: u32 = 0;
const INBOX_LOG: u32 = 1;
const APPLICATION: u32 = 10;
const WELCOMES: u32 = 11;

/// How long the health check of one node may take before it is passed over.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest page the transport asks a node for.
const MAX_PAGE: u32 = 100;

/// An optional credential header for the gateway (libxmtp's default name is `authorization`).
/// Its value never appears in `Debug` output.
#[derive(Clone, Default)]
pub struct GatewayAuth(Option<(AsciiMetadataKey, AsciiMetadataValue)>);

impl GatewayAuth {
    /// `name: value` on every gateway call; refused when either is not a valid header.
    pub fn header(name: &str, value: &str) -> Result<Self, TransportError> {
        let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| TransportError::Envelope(format!("invalid header name {name:?}")))?;
        let mut value = AsciiMetadataValue::try_from(value)
            .map_err(|_| TransportError::Envelope("invalid gateway credential value".into()))?;
        value.set_sensitive(true);
        Ok(Self(Some((key, value))))
    }
}

impl std::fmt::Debug for GatewayAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some((k, _)) => write!(f, "GatewayAuth({}: <redacted>)", k.as_str()),
            None => write!(f, "GatewayAuth(none)"),
        }
    }
}

impl tonic::service::Interceptor for GatewayAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some((k, v)) = &self.0 {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        Ok(req)
    }
}

/// One position per originator (node id → last sequence id seen).
type OriginatorCursor = HashMap<u32, u64>;

type Gateway = PayerApiClient<InterceptedService<Channel, GatewayAuth>>;
type Node = ReplicationApiClient<Channel>;

/// Per-topic memory: the last id handed out and the per-originator cursor behind it.
#[derive(Debug, Default, Clone)]
struct Position {
    last_id: u64,
    cursor: HashMap<u32, u64>,
}

/// [`Transport`] over d14n: writes to a gateway, reads from a node it lists.
#[derive(Clone)]
pub struct D14nTransport {
    gateway: Gateway,
    gateway_channel: Channel,
    node: Arc<OnceCell<Node>>,
    positions: Arc<Mutex<HashMap<Vec<u8>, Position>>>,
    tls: TlsOptions,
}

impl std::fmt::Debug for D14nTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("D14nTransport").finish_non_exhaustive()
    }
}

/// A lazily connecting channel for `url` (`http://` = h2c, `https://` = TLS with `tls`).
fn channel(url: &str, tls: &TlsOptions) -> Result<Channel, TransportError> {
    super::channel(url, tls).map(|(channel, _)| channel)
}

impl D14nTransport {
    /// A transport for the gateway at `gateway_url`; nothing is dialled until the first call.
    /// The node to read from is chosen on the first read.
    pub fn connect_lazy(gateway_url: &str, auth: GatewayAuth) -> Result<Self, TransportError> {
        Self::connect_lazy_with(gateway_url, auth, &TlsOptions::default())
    }

    /// Like [`D14nTransport::connect_lazy`], trusting `tls` for `https://` gateway and node URLs.
    pub fn connect_lazy_with(
        gateway_url: &str,
        auth: GatewayAuth,
        tls: &TlsOptions,
    ) -> Result<Self, TransportError> {
        let gateway_channel = channel(gateway_url, tls)?;
        let gateway = PayerApiClient::with_interceptor(gateway_channel.clone(), auth)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            gateway,
            gateway_channel,
            node: Arc::new(OnceCell::new()),
            positions: Arc::new(Mutex::new(HashMap::new())),
            tls: tls.clone(),
        })
    }

    /// The node reads go to: `GetNodes` on the gateway, then the first node (by id) whose
    /// health check answers SERVING.
    async fn node(&self) -> Result<Node, TransportError> {
        let node = self
            .node
            .get_or_try_init(|| async {
                let nodes = self
                    .gateway
                    .clone()
                    .get_nodes(GetNodesRequest {})
                    .await?
                    .into_inner()
                    .nodes;
                let mut nodes: Vec<(u32, String)> = nodes.into_iter().collect();
                nodes.sort();
                if nodes.is_empty() {
                    return Err(TransportError::NoNode("the gateway lists no nodes".into()));
                }
                let mut failures = Vec::new();
                for (id, url) in &nodes {
                    match healthy(url, &self.tls).await {
                        Ok(ch) => {
                            tracing::info!(node.id = id, node.url = %url, "d14n: reading from node");
                            return Ok(ReplicationApiClient::new(ch)
                                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                                .max_encoding_message_size(MAX_MESSAGE_BYTES));
                        }
                        Err(e) => failures.push(format!("node {id} at {url}: {e}")),
                    }
                }
                Err(TransportError::NoNode(failures.join("; ")))
            })
            .await?;
        Ok(node.clone())
    }

    /// The gateway's channel (for health checks of the gateway itself).
    pub fn gateway_channel(&self) -> Channel {
        self.gateway_channel.clone()
    }

    async fn publish(&self, envelopes: Vec<ClientEnvelope>) -> Result<(), TransportError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        self.gateway
            .clone()
            .publish_client_envelopes(PublishClientEnvelopesRequest { envelopes })
            .await?;
        Ok(())
    }

    async fn query(
        &self,
        topics: Vec<Vec<u8>>,
        last_seen: HashMap<u32, u64>,
        limit: u32,
    ) -> Result<Vec<Opened>, TransportError> {
        let req = QueryEnvelopesRequest {
            query: Some(EnvelopesQuery {
                topics,
                originator_node_ids: vec![],
                last_seen: Some(Cursor {
                    node_id_to_sequence_id: last_seen,
                }),
            }),
            limit,
        };
        let envelopes = self.node().await?.query_envelopes(req).await?.into_inner();
        envelopes.envelopes.iter().map(open).collect()
    }

    async fn newest(&self, topics: Vec<Vec<u8>>) -> Result<Vec<Option<Opened>>, TransportError> {
        let req = GetNewestEnvelopeRequest { topics };
        let r = self
            .node()
            .await?
            .get_newest_envelope(req)
            .await?
            .into_inner();
        r.results
            .iter()
            .map(|r| r.originator_envelope.as_ref().map(open).transpose())
            .collect()
    }

    /// Where a read of `topic` from `id` starts (see the module docs).
    fn start(&self, topic: &[u8], id: u64, compat: &[u32]) -> HashMap<u32, u64> {
        let positions = self.positions.lock().expect("positions lock");
        match positions.get(topic) {
            Some(p) if p.last_id == id && id != 0 => p.cursor.clone(),
            _ if id == 0 => HashMap::new(),
            _ => compat.iter().map(|o| (*o, id)).collect(),
        }
    }

    /// Remembers what a read of `topic` that started at `from` handed out.
    fn advance(&self, topic: &[u8], from: HashMap<u32, u64>, got: &[Opened]) {
        if got.is_empty() {
            return;
        }
        let mut cursor = from;
        let mut last_id = 0;
        for o in got {
            let e = cursor.entry(o.originator).or_insert(0);
            *e = (*e).max(o.sequence_id);
            last_id = last_id.max(o.sequence_id);
        }
        let mut positions = self.positions.lock().expect("positions lock");
        positions.insert(topic.to_vec(), Position { last_id, cursor });
    }

    /// The lowest common start of several topics, and each topic's own start.
    fn starts(
        &self,
        kind: u8,
        filters: &[(Vec<u8>, u64)],
        compat: &[u32],
    ) -> (OriginatorCursor, HashMap<Vec<u8>, OriginatorCursor>) {
        let own: HashMap<Vec<u8>, OriginatorCursor> = filters
            .iter()
            .map(|(id, from)| {
                let t = topic(kind, id);
                let s = self.start(&t, *from, compat);
                (t, s)
            })
            .collect();
        let mut common: Option<HashMap<u32, u64>> = None;
        for s in own.values() {
            common = Some(match common {
                None => s.clone(),
                Some(c) => c
                    .into_iter()
                    .filter_map(|(o, v)| s.get(&o).map(|w| (o, v.min(*w))))
                    .collect(),
            });
        }
        (common.unwrap_or_default(), own)
    }

    async fn subscribe(
        &self,
        topics: Vec<Vec<u8>>,
        last_seen: HashMap<u32, u64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Opened, TransportError>>, TransportError>
    {
        let req = SubscribeEnvelopesRequest {
            query: Some(EnvelopesQuery {
                topics,
                originator_node_ids: vec![],
                last_seen: Some(Cursor {
                    node_id_to_sequence_id: last_seen,
                }),
            }),
        };
        let stream = self
            .node()
            .await?
            .subscribe_envelopes(req)
            .await?
            .into_inner();
        Ok(stream
            .flat_map(|batch| {
                let items: Vec<Result<Opened, TransportError>> = match batch {
                    Ok(b) => b.envelopes.iter().map(open).collect(),
                    Err(s) => vec![Err(TransportError::from(s))],
                };
                futures::stream::iter(items)
            })
            .boxed())
    }

    /// Follows the welcome topics (installation keys) in `filters` (key, id cursor): replays
    /// what is stored after each cursor, then streams; yields (installation key, id).
    pub async fn subscribe_welcomes(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<TopicStream, TransportError> {
        let (common, own) = self.starts(WELCOME, &filters, &[WELCOMES]);
        let topics = own.keys().cloned().collect();
        let stream = self.subscribe(topics, common).await?;
        Ok(stream
            .filter_map(move |o| {
                let item = match o {
                    Err(e) => Some(Err(e)),
                    Ok(o) => fresh(&own, &o).then(|| Ok((o.topic[1..].to_vec(), o.sequence_id))),
                };
                async move { item }
            })
            .boxed())
    }

    /// Follows the group topics (group ids) in `filters` (group id, id cursor).
    pub async fn subscribe_groups(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<GroupStream, TransportError> {
        let (common, own) = self.starts(GROUP, &filters, &[COMMITS, APPLICATION]);
        let topics = own.keys().cloned().collect();
        let stream = self.subscribe(topics, common).await?;
        Ok(stream
            .filter_map(move |o| {
                let item = match o {
                    Err(e) => Some(Err(e)),
                    Ok(o) => fresh(&own, &o)
                        .then(|| match o.payload {
                            Some(Payload::GroupMessage(GroupMessageInput {
                                version: Some(group_message_input::Version::V1(v)),
                            })) => Some(Ok(GroupArrival {
                                group_id: o.topic[1..].to_vec(),
                                id: o.sequence_id,
                                data: v.data,
                                sender_hmac: v.sender_hmac,
                            })),
                            _ => None,
                        })
                        .flatten(),
                };
                async move { item }
            })
            .boxed())
    }
}

/// Whether a streamed envelope is past its topic's own start (the common start is lower).
fn fresh(own: &HashMap<Vec<u8>, HashMap<u32, u64>>, o: &Opened) -> bool {
    own.get(&o.topic)
        .is_some_and(|start| o.sequence_id > start.get(&o.originator).copied().unwrap_or(0))
}

/// Checks one node's health; its channel when SERVING.
async fn healthy(url: &str, tls: &TlsOptions) -> Result<Channel, String> {
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
struct Opened {
    originator: u32,
    sequence_id: u64,
    ns: i64,
    topic: Vec<u8>,
    payload: Option<Payload>,
}

fn open(e: &OriginatorEnvelope) -> Result<Opened, TransportError> {
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

fn topic(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(1 + id.len());
    t.push(kind);
    t.extend_from_slice(id);
    t
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

fn inbox_topic(inbox_id: &str) -> Result<Vec<u8>, TransportError> {
    let id = hex::decode(inbox_id)
        .map_err(|_| TransportError::Envelope(format!("inbox id {inbox_id:?} is not hex")))?;
    Ok(topic(IDENTITY, &id))
}

/// The group id in an MLSMessage's cleartext header.
fn group_of(data: &[u8]) -> Result<Vec<u8>, TransportError> {
    let bad = |e: String| TransportError::Envelope(format!("group message: {e}"));
    let msg = MlsMessageIn::tls_deserialize_exact(data).map_err(|e| bad(e.to_string()))?;
    let protocol: ProtocolMessage = match msg.extract() {
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        MlsMessageBodyIn::PublicMessage(m) => m.into(),
        _ => return Err(bad("not a private or public message".into())),
    };
    Ok(protocol.group_id().as_slice().to_vec())
}

fn ns(o: &Opened) -> u64 {
    u64::try_from(o.ns).unwrap_or(0)
}

fn to_group_message(o: Opened) -> Option<GroupMessage> {
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

fn to_welcome(o: Opened) -> Option<WelcomeMessage> {
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

fn ascending(direction: i32) -> bool {
    direction == SortDirection::Ascending as i32
}

fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    }
}

#[async_trait]
impl Transport for D14nTransport {
    async fn get_inbox_ids(
        &self,
        req: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError> {
        let v4 = V4InboxIdsRequest {
            requests: req
                .requests
                .into_iter()
                .map(|r| get_inbox_ids_request::Request {
                    identifier: r.identifier,
                    identifier_kind: r.identifier_kind,
                })
                .collect(),
        };
        let r = self.node().await?.get_inbox_ids(v4).await?.into_inner();
        Ok(GetInboxIdsResponse {
            responses: r
                .responses
                .into_iter()
                .map(|r| get_inbox_ids_response::Response {
                    identifier: r.identifier,
                    inbox_id: r.inbox_id,
                    identifier_kind: r.identifier_kind,
                })
                .collect(),
        })
    }

    /// One QueryEnvelopes over the inboxes' topics from the lowest sequence id asked for
    /// (identity updates all come from the INBOX_LOG originator), split back per request.
    async fn get_identity_updates(
        &self,
        req: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError> {
        if req.requests.is_empty() {
            return Ok(GetIdentityUpdatesResponse { responses: vec![] });
        }
        let min = req
            .requests
            .iter()
            .map(|r| r.sequence_id)
            .min()
            .unwrap_or(0);
        let topics = req
            .requests
            .iter()
            .map(|r| inbox_topic(&r.inbox_id))
            .collect::<Result<Vec<_>, _>>()?;
        let got = self.query(topics, [(INBOX_LOG, min)].into(), 0).await?;
        let mut by_inbox: HashMap<String, Vec<IdentityUpdateLog>> = HashMap::new();
        for o in got {
            let seconds = ns(&o);
            if let Some(Payload::IdentityUpdate(u)) = o.payload {
                by_inbox
                    .entry(u.inbox_id.clone())
                    .or_default()
                    .push(IdentityUpdateLog {
                        sequence_id: o.sequence_id,
                        server_timestamp_ns: seconds,
                        update: Some(u),
                    });
            }
        }
        let responses = req
            .requests
            .into_iter()
            .map(|r| {
                let mut updates: Vec<IdentityUpdateLog> = by_inbox
                    .get(&r.inbox_id)
                    .map(|v| {
                        v.iter()
                            .filter(|l| l.sequence_id > r.sequence_id)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                updates.sort_by_key(|l| l.sequence_id);
                get_identity_updates_response::Response {
                    inbox_id: r.inbox_id,
                    updates,
                }
            })
            .collect();
        Ok(GetIdentityUpdatesResponse { responses })
    }

    async fn publish_identity_update(
        &self,
        req: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError> {
        let update = req
            .identity_update
            .ok_or_else(|| TransportError::Envelope("missing identity update".into()))?;
        let t = inbox_topic(&update.inbox_id)?;
        self.publish(vec![envelope(t, Payload::IdentityUpdate(update))])
            .await
    }

    async fn upload_key_package(&self, req: UploadKeyPackageRequest) -> Result<(), TransportError> {
        let bytes = req
            .key_package
            .as_ref()
            .map(|k| k.key_package_tls_serialized.as_slice())
            .unwrap_or_default();
        let kp = KeyPackageIn::tls_deserialize_exact(bytes)
            .map_err(|e| TransportError::Envelope(format!("key package: {e}")))?;
        let key = kp.unverified_credential().signature_key.as_slice().to_vec();
        self.publish(vec![envelope(
            topic(KEY_PACKAGE, &key),
            Payload::UploadKeyPackage(req),
        )])
        .await
    }

    /// GetNewestEnvelope on each installation's key-package topic; an empty entry where the
    /// installation has none (the v3 shape).
    async fn fetch_key_packages(
        &self,
        req: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError> {
        let topics = req
            .installation_keys
            .iter()
            .map(|k| topic(KEY_PACKAGE, k))
            .collect();
        let newest = self.newest(topics).await?;
        let key_packages = newest
            .into_iter()
            .map(|o| {
                let bytes = match o.and_then(|o| o.payload) {
                    Some(Payload::UploadKeyPackage(u)) => u
                        .key_package
                        .map(|k| k.key_package_tls_serialized)
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                fetch_key_packages_response::KeyPackage {
                    key_package_tls_serialized: bytes,
                }
            })
            .collect();
        Ok(FetchKeyPackagesResponse { key_packages })
    }

    async fn send_group_messages(
        &self,
        req: SendGroupMessagesRequest,
    ) -> Result<(), TransportError> {
        let envelopes = req
            .messages
            .into_iter()
            .map(|m| {
                let group = match &m.version {
                    Some(group_message_input::Version::V1(v)) => group_of(&v.data)?,
                    None => {
                        return Err(TransportError::Envelope("group message without v1".into()))
                    }
                };
                Ok(envelope(topic(GROUP, &group), Payload::GroupMessage(m)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.publish(envelopes).await
    }

    async fn send_welcome_messages(
        &self,
        req: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError> {
        let envelopes = req
            .messages
            .into_iter()
            .map(|m| {
                let key = match &m.version {
                    Some(welcome_message_input::Version::V1(v)) => v.installation_key.clone(),
                    Some(welcome_message_input::Version::WelcomePointer(p)) => {
                        p.installation_key.clone()
                    }
                    None => {
                        return Err(TransportError::Envelope("welcome without a version".into()))
                    }
                };
                Ok(envelope(topic(WELCOME, &key), Payload::WelcomeMessage(m)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.publish(envelopes).await
    }

    /// Ascending: QueryEnvelopes from the topic's remembered per-originator cursor. Descending
    /// from the top with limit 1 (the newest message): GetNewestEnvelope. Other descending
    /// reads fetch the topic and page it here.
    async fn query_group_messages(
        &self,
        req: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError> {
        let paging = req.paging_info.unwrap_or_default();
        let t = topic(GROUP, &req.group_id);
        let limit = page_limit(paging.limit);
        if !ascending(paging.direction) {
            if paging.id_cursor == 0 && limit == 1 {
                let newest = self.newest(vec![t]).await?;
                let messages = newest
                    .into_iter()
                    .flatten()
                    .filter_map(to_group_message)
                    .collect();
                return Ok(QueryGroupMessagesResponse {
                    messages,
                    paging_info: None,
                });
            }
            let mut all = Vec::new();
            let mut from = HashMap::new();
            loop {
                let got = self.query(vec![t.clone()], from.clone(), MAX_PAGE).await?;
                let full = got.len() as u32 >= MAX_PAGE;
                for o in &got {
                    let e = from.entry(o.originator).or_insert(0);
                    *e = (*e).max(o.sequence_id);
                }
                all.extend(got.into_iter().filter_map(to_group_message));
                if !full {
                    break;
                }
            }
            let messages = all
                .into_iter()
                .rev()
                .filter(|m| paging.id_cursor == 0 || id_of(m) < paging.id_cursor)
                .take(limit as usize)
                .collect();
            return Ok(QueryGroupMessagesResponse {
                messages,
                paging_info: None,
            });
        }
        let from = self.start(&t, paging.id_cursor, &[COMMITS, APPLICATION]);
        let got = self.query(vec![t.clone()], from.clone(), limit).await?;
        self.advance(&t, from, &got);
        Ok(QueryGroupMessagesResponse {
            messages: got.into_iter().filter_map(to_group_message).collect(),
            paging_info: None,
        })
    }

    async fn query_welcome_messages(
        &self,
        req: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError> {
        let paging = req.paging_info.unwrap_or_default();
        if !ascending(paging.direction) {
            return Err(TransportError::Envelope(
                "d14n welcome reads are ascending only".into(),
            ));
        }
        let t = topic(WELCOME, &req.installation_key);
        let from = self.start(&t, paging.id_cursor, &[WELCOMES]);
        let got = self
            .query(vec![t.clone()], from.clone(), page_limit(paging.limit))
            .await?;
        self.advance(&t, from, &got);
        Ok(QueryWelcomeMessagesResponse {
            messages: got.into_iter().filter_map(to_welcome).collect(),
            paging_info: None,
        })
    }
}

fn id_of(m: &GroupMessage) -> u64 {
    match &m.version {
        Some(group_message::Version::V1(v)) => v.id,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> D14nTransport {
        D14nTransport::connect_lazy("http://127.0.0.1:1", GatewayAuth::default()).unwrap()
    }

    fn opened(originator: u32, sequence_id: u64) -> Opened {
        Opened {
            originator,
            sequence_id,
            ns: 0,
            topic: vec![0, 1],
            payload: None,
        }
    }

    #[test]
    fn networks_follow_libxmtps_names() {
        assert_eq!(
            gateway_for("testnet"),
            Some("https://payer.testnet.xmtp.network:443")
        );
        assert!(gateway_for("testnet-dev").unwrap().contains("testnet-dev"));
        assert_eq!(gateway_for("mainnet"), None, "no URL in libxmtp 1.10");
        assert_eq!(gateway_for("production"), None, "production is v3");
    }

    #[tokio::test]
    async fn a_read_continues_from_the_remembered_cursor_of_the_id_it_handed_out() {
        let t = transport();
        let topic = vec![0, 1];
        assert!(
            t.start(&topic, 0, &[0, 10]).is_empty(),
            "from the beginning"
        );
        t.advance(
            &topic,
            HashMap::new(),
            &[opened(0, 3), opened(100, 7), opened(10, 5)],
        );
        let exact = t.start(&topic, 7, &[0, 10]);
        assert_eq!(exact, [(0, 3), (100, 7), (10, 5)].into());
        // Any other id: the v3-compatibility originators from that id, others from the start.
        assert_eq!(t.start(&topic, 4, &[0, 10]), [(0, 4), (10, 4)].into());
    }

    #[tokio::test]
    async fn streams_skip_what_their_own_topic_already_had() {
        let t = transport();
        let (common, own) = t.starts(GROUP, &[(vec![1], 5), (vec![2], 2)], &[0, 10]);
        assert_eq!(common, [(0, 2), (10, 2)].into());
        let mut o = opened(10, 4);
        assert!(!fresh(&own, &o), "topic 1 is past 4");
        o.topic = vec![0, 2];
        assert!(fresh(&own, &o));
    }

    #[test]
    fn the_gateway_credential_is_never_printed() {
        let auth = GatewayAuth::header("Authorization", "Bearer s3cret").unwrap();
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("authorization"),
            "{shown}"
        );
        assert!(GatewayAuth::header("bad name", "x").is_err());
    }

    #[test]
    fn the_gateway_credential_rides_on_every_gateway_call() {
        use tonic::service::Interceptor as _;
        let mut auth = GatewayAuth::header("Authorization", "Bearer s3cret").unwrap();
        let req = auth.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let req = GatewayAuth::default()
            .call(tonic::Request::new(()))
            .unwrap();
        assert!(req.metadata().is_empty());
    }
}
