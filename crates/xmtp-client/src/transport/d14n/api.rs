//! [`Transport`] for [`D14nTransport`]: each v3 call as d14n envelopes.

use std::collections::HashMap;

use async_trait::async_trait;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::KeyPackageIn;
use xmtp_proto::d14n_envelopes::client_envelope::Payload;
use xmtp_proto::d14n_message_api::{
    get_inbox_ids_request, GetInboxIdsRequest as V4InboxIdsRequest,
};
use xmtp_proto::identity_api::get_identity_updates_response::{self, IdentityUpdateLog};
use xmtp_proto::identity_api::{
    get_inbox_ids_response, GetIdentityUpdatesRequest, GetIdentityUpdatesResponse,
    GetInboxIdsRequest, GetInboxIdsResponse, PublishIdentityUpdateRequest,
};
use xmtp_proto::mls_api::{
    fetch_key_packages_response, group_message_input, welcome_message_input,
    FetchKeyPackagesRequest, FetchKeyPackagesResponse, QueryGroupMessagesRequest,
    QueryGroupMessagesResponse, QueryWelcomeMessagesRequest, QueryWelcomeMessagesResponse,
    SendGroupMessagesRequest, SendWelcomeMessagesRequest, UploadKeyPackageRequest,
};

use super::envelopes::{
    ascending, envelope, group_of, id_of, inbox_topic, ns, page_limit, to_group_message,
    to_welcome, topic,
};
use super::{
    D14nTransport, APPLICATION, COMMITS, GROUP, INBOX_LOG, KEY_PACKAGE, MAX_PAGE, WELCOME, WELCOMES,
};
use crate::transport::{Transport, TransportError};

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
