//! [`Transport`](super::Transport) over XMTP's decentralized network (d14n), as libxmtp 1.10 speaks it
//! (docs/D14N.md).
//!
//! Writes become unsigned `ClientEnvelope`s (the v3 payload, `aad.target_topic` = kind byte +
//! id) published through the gateway's `PayerApi/PublishClientEnvelopes`; the gateway pays.
//! Reads go to a node the gateway lists in `GetNodes` (the first, by id, that passes the
//! `grpc.health.v1` check), through `ReplicationApi`; the originator → payer → client envelope
//! nesting is unwrapped back into the v3 response types.
//!
//! Cursors: d14n keeps one position per originator. The v3-shaped [`Transport`](super::Transport) carries one id
//! per topic, so a message's id is its `originator_sequence_id` and the transport remembers,
//! per topic, the per-originator cursor behind the last id it handed out; a query from that id
//! continues exactly there. A query from any other id (e.g. after a restart) starts from that
//! id for libxmtp's v3-compatibility originators (0 and 10 for groups, 11 for welcomes; exact
//! on herald's devnode and on v3 data migrated to d14n) and from the beginning for every other
//! originator, so it may repeat messages but never skips one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::OnceCell;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::TlsOptions;
use xmtp_proto::d14n_envelopes::{client_envelope::Payload, ClientEnvelope, Cursor};
use xmtp_proto::d14n_message_api::replication_api_client::ReplicationApiClient;
use xmtp_proto::d14n_message_api::{
    EnvelopesQuery, GetNewestEnvelopeRequest, QueryEnvelopesRequest, SubscribeEnvelopesRequest,
};
use xmtp_proto::d14n_payer_api::payer_api_client::PayerApiClient;
use xmtp_proto::d14n_payer_api::{GetNodesRequest, PublishClientEnvelopesRequest};
use xmtp_proto::mls_api::{group_message_input, GroupMessageInput};

use super::{GroupArrival, GroupStream, TopicStream, TransportError, MAX_MESSAGE_BYTES};

mod api;
mod envelopes;
mod network;
#[cfg(test)]
mod tests;

use envelopes::{fresh, healthy, open, topic, Opened};
pub use network::{gateway_for, GatewayAuth, NETWORKS};

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

type Node = ReplicationApiClient<Channel>;

/// One position per originator (node id → last sequence id seen).
type OriginatorCursor = HashMap<u32, u64>;

type Gateway = PayerApiClient<InterceptedService<Channel, GatewayAuth>>;
/// Per-topic memory: the last id handed out and the per-originator cursor behind it.
#[derive(Debug, Default, Clone)]
struct Position {
    last_id: u64,
    cursor: HashMap<u32, u64>,
}

/// [`Transport`](super::Transport) over d14n: writes to a gateway, reads from a node it lists.
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
