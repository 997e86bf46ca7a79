//! `xmtp.xmtpv4.message_api.ReplicationApi`: the node's reads. Stored v3 records are served as
//! originator envelopes (see the module docs of `d14n`); a cursor names one position per
//! originator, and an envelope is returned only when its sequence id is above its
//! originator's position (absent = 0).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use xmtp_proto::d14n_envelopes::{Cursor, OriginatorEnvelope};
use xmtp_proto::d14n_message_api::replication_api_server::ReplicationApi;
use xmtp_proto::d14n_message_api::{
    get_inbox_ids_response, get_newest_envelope_response, GetInboxIdsRequest, GetInboxIdsResponse,
    GetNewestEnvelopeRequest, GetNewestEnvelopeResponse, QueryEnvelopesRequest,
    QueryEnvelopesResponse, SubscribeEnvelopesRequest, SubscribeEnvelopesResponse,
};
use xmtp_proto::mls_api::{group_message, PagingInfo, SortDirection};

use super::{
    group_envelope, group_originator, identity_envelope, key_package_envelope, originator,
    position, welcome_envelope, Replication, Topic,
};
use crate::service::subscribe;
use crate::store::paging::MAX_PAGE;
use crate::store::{group_id_of, welcome_id_of, Store};

/// Largest (and, for limit 0, default) number of envelopes per query (xmtpd's cap).
const MAX_QUERY: usize = 1_000;
/// Sanity bound on topics / identifiers per request.
const MAX_TOPICS: usize = 10_000;

type EnvelopeStream =
    Pin<Box<dyn Stream<Item = Result<SubscribeEnvelopesResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ReplicationApi for Replication {
    type SubscribeEnvelopesStream = EnvelopeStream;

    /// Replays what is stored after `last_seen` for each topic, then streams new envelopes
    /// (group and welcome topics; the SDK subscribes to nothing else).
    async fn subscribe_envelopes(
        &self,
        request: Request<SubscribeEnvelopesRequest>,
    ) -> Result<Response<Self::SubscribeEnvelopesStream>, Status> {
        let query = request.into_inner().query.unwrap_or_default();
        let topics = parse_topics(&query.topics)?;
        if topics.is_empty() {
            return Err(Status::invalid_argument(
                "subscribe to at least one topic (the devnode does not replicate by originator)",
            ));
        }
        let cursor = query.last_seen.as_ref();
        let (mut groups, mut welcomes) = (HashMap::new(), Vec::new());
        for topic in topics {
            match topic {
                Topic::Group(g) => {
                    let starts = (
                        position(cursor, originator::COMMITS),
                        position(cursor, originator::APPLICATION),
                    );
                    groups.insert(g, starts);
                }
                Topic::Welcome(k) => welcomes.push((k, position(cursor, originator::WELCOMES))),
                Topic::Identity(_) | Topic::KeyPackage(_) => {
                    return Err(Status::invalid_argument(
                        "the devnode streams group and welcome topics only",
                    ))
                }
            }
        }
        let store = self.node.store.clone();
        let mut out: Option<EnvelopeStream> = None;
        if !groups.is_empty() {
            let filters = groups
                .iter()
                .map(|(g, (commits, apps))| (g.clone(), (*commits).min(*apps)))
                .collect();
            let s = subscribe::groups(store.clone(), filters).filter_map(move |m| match m {
                Err(e) => Some(Err(e)),
                Ok(m) => {
                    let Some(group_message::Version::V1(v)) = &m.version else {
                        return None;
                    };
                    let (commits, apps) = groups.get(&v.group_id)?;
                    let start = if group_originator(v) == originator::COMMITS {
                        commits
                    } else {
                        apps
                    };
                    (v.id > *start)
                        .then(|| group_envelope(&m))
                        .flatten()
                        .map(|e| Ok(one(e)))
                }
            });
            out = Some(Box::pin(s));
        }
        if !welcomes.is_empty() {
            let s = subscribe::welcomes(store, welcomes).filter_map(|m| match m {
                Err(e) => Some(Err(e)),
                Ok(m) => welcome_envelope(&m).map(|e| Ok(one(e))),
            });
            out = Some(match out {
                Some(groups) => Box::pin(groups.merge(s)),
                None => Box::pin(s),
            });
        }
        Ok(Response::new(out.expect("at least one topic")))
    }

    async fn query_envelopes(
        &self,
        request: Request<QueryEnvelopesRequest>,
    ) -> Result<Response<QueryEnvelopesResponse>, Status> {
        let request = request.into_inner();
        let query = request.query.unwrap_or_default();
        let topics = parse_topics(&query.topics)?;
        if topics.is_empty() {
            return Err(Status::invalid_argument(
                "query at least one topic (the devnode does not replicate by originator)",
            ));
        }
        let limit = match request.limit as usize {
            0 => MAX_QUERY,
            n => n.min(MAX_QUERY),
        };
        let mut envelopes = Vec::new();
        let mut seen = HashSet::new();
        for topic in topics {
            if envelopes.len() >= limit {
                break;
            }
            if !seen.insert(topic.clone()) {
                continue;
            }
            let room = limit - envelopes.len();
            envelopes.extend(after(
                &self.node.store,
                &topic,
                query.last_seen.as_ref(),
                room,
            ));
        }
        Ok(Response::new(QueryEnvelopesResponse { envelopes }))
    }

    async fn get_inbox_ids(
        &self,
        request: Request<GetInboxIdsRequest>,
    ) -> Result<Response<GetInboxIdsResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > MAX_TOPICS {
            return Err(Status::invalid_argument("too many requests"));
        }
        let responses = requests
            .into_iter()
            .map(|r| get_inbox_ids_response::Response {
                inbox_id: self.node.store.inbox_for_address(&r.identifier),
                identifier: r.identifier,
                identifier_kind: r.identifier_kind,
            })
            .collect();
        Ok(Response::new(GetInboxIdsResponse { responses }))
    }

    async fn get_newest_envelope(
        &self,
        request: Request<GetNewestEnvelopeRequest>,
    ) -> Result<Response<GetNewestEnvelopeResponse>, Status> {
        let topics = parse_topics(&request.into_inner().topics)?;
        let store = &self.node.store;
        let results = topics
            .iter()
            .map(|topic| get_newest_envelope_response::Response {
                originator_envelope: match topic {
                    Topic::Group(g) => store
                        .newest_group_message(g)
                        .as_ref()
                        .and_then(group_envelope),
                    Topic::Welcome(k) => {
                        store.newest_welcome(k).as_ref().and_then(welcome_envelope)
                    }
                    Topic::Identity(i) => store
                        .identity_updates(i, 0)
                        .last()
                        .and_then(identity_envelope),
                    Topic::KeyPackage(k) => store
                        .key_package_with_id(k)
                        .map(|(id, bytes)| key_package_envelope(k, id, bytes)),
                },
            })
            .collect();
        Ok(Response::new(GetNewestEnvelopeResponse { results }))
    }
}

fn one(envelope: OriginatorEnvelope) -> SubscribeEnvelopesResponse {
    SubscribeEnvelopesResponse {
        envelopes: vec![envelope],
    }
}

fn parse_topics(topics: &[Vec<u8>]) -> Result<Vec<Topic>, Status> {
    if topics.len() > MAX_TOPICS {
        return Err(Status::invalid_argument("too many topics"));
    }
    topics.iter().map(|t| Topic::parse(t)).collect()
}

fn ascending_after(cursor: u64) -> PagingInfo {
    PagingInfo {
        direction: SortDirection::Ascending as i32,
        limit: MAX_PAGE as u32,
        id_cursor: cursor,
    }
}

/// Up to `limit` envelopes of `topic` above the cursor, oldest first.
fn after(
    store: &Store,
    topic: &Topic,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Vec<OriginatorEnvelope> {
    let mut out = Vec::new();
    match topic {
        Topic::Group(g) => {
            let commits = position(cursor, originator::COMMITS);
            let apps = position(cursor, originator::APPLICATION);
            let mut from = commits.min(apps);
            loop {
                let (page, _) = store.query_group(g, Some(&ascending_after(from)));
                for m in &page {
                    let Some(group_message::Version::V1(v)) = &m.version else {
                        continue;
                    };
                    let start = if group_originator(v) == originator::COMMITS {
                        commits
                    } else {
                        apps
                    };
                    if v.id > start && out.len() < limit {
                        out.extend(group_envelope(m));
                    }
                }
                match page.last() {
                    Some(last) if page.len() == MAX_PAGE && out.len() < limit => {
                        from = group_id_of(last)
                    }
                    _ => break,
                }
            }
        }
        Topic::Welcome(k) => {
            let mut from = position(cursor, originator::WELCOMES);
            loop {
                let (page, _) = store.query_welcomes(k, Some(&ascending_after(from)));
                out.extend(
                    page.iter()
                        .take(limit - out.len())
                        .filter_map(welcome_envelope),
                );
                match page.last() {
                    Some(last) if page.len() == MAX_PAGE && out.len() < limit => {
                        from = welcome_id_of(last)
                    }
                    _ => break,
                }
            }
        }
        Topic::Identity(i) => {
            let logs = store.identity_updates(i, position(cursor, originator::INBOX_LOG));
            out.extend(logs.iter().take(limit).filter_map(identity_envelope));
        }
        Topic::KeyPackage(k) => {
            if let Some((id, bytes)) = store.key_package_with_id(k) {
                if id > position(cursor, originator::KEY_PACKAGES) {
                    out.push(key_package_envelope(k, id, bytes));
                }
            }
        }
    }
    out
}
