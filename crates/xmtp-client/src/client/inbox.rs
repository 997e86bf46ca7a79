//! Identity lookups: address → inbox id, and an inbox's verified installations.

use std::collections::HashMap;

use xmtp_proto::associations::{replay, AssociationState};
use xmtp_proto::associations_proto::IdentifierKind;
use xmtp_proto::identity_api::{get_identity_updates_request, get_inbox_ids_request};
use xmtp_proto::identity_api::{GetIdentityUpdatesRequest, GetInboxIdsRequest};

use super::Client;
use crate::error::ClientError;

/// libxmtp's batch size for identity lookups.
pub const IDENTITY_BATCH: usize = 50;

/// An inbox's verified association state and the sequence id of its latest update.
#[derive(Debug, Clone)]
pub struct InboxState {
    pub state: AssociationState,
    pub sequence_id: u64,
}

impl Client {
    /// Resolves Ethereum addresses to inbox ids, ≤50 per node call. Unknown addresses map to
    /// `None`. Addresses are lowercased first.
    pub async fn resolve_inbox_ids(
        &self,
        addresses: &[String],
    ) -> Result<HashMap<String, Option<String>>, ClientError> {
        let mut out = HashMap::with_capacity(addresses.len());
        let lowered: Vec<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
        for chunk in lowered.chunks(IDENTITY_BATCH) {
            let req = GetInboxIdsRequest {
                requests: chunk
                    .iter()
                    .map(|a| get_inbox_ids_request::Request {
                        identifier: a.clone(),
                        identifier_kind: IdentifierKind::Ethereum as i32,
                    })
                    .collect(),
            };
            let resp = self.transport.get_inbox_ids(req).await?;
            for r in resp.responses {
                out.insert(r.identifier, r.inbox_id);
            }
        }
        for a in lowered {
            out.entry(a).or_insert(None);
        }
        Ok(out)
    }

    /// Downloads and verifies the full identity logs of `inbox_ids` (≤50 per call).
    pub async fn inbox_states(
        &self,
        inbox_ids: &[String],
    ) -> Result<HashMap<String, InboxState>, ClientError> {
        let mut out = HashMap::with_capacity(inbox_ids.len());
        for chunk in inbox_ids.chunks(IDENTITY_BATCH) {
            let req = GetIdentityUpdatesRequest {
                requests: chunk
                    .iter()
                    .map(|id| get_identity_updates_request::Request {
                        inbox_id: id.clone(),
                        sequence_id: 0,
                    })
                    .collect(),
            };
            let resp = self.transport.get_identity_updates(req).await?;
            for r in resp.responses {
                let Some(last) = r.updates.last().map(|u| u.sequence_id) else {
                    continue;
                };
                let updates: Vec<_> = r.updates.iter().filter_map(|u| u.update.as_ref()).collect();
                let state = replay(updates).map_err(|source| ClientError::Identity {
                    inbox_id: r.inbox_id.clone(),
                    source,
                })?;
                out.insert(
                    r.inbox_id,
                    InboxState {
                        state,
                        sequence_id: last,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Inboxes (among `known`: inbox → sequence id we have) that have newer identity updates.
    pub(crate) async fn inboxes_with_updates(
        &self,
        known: &HashMap<String, u64>,
    ) -> Result<Vec<String>, ClientError> {
        let mut changed = Vec::new();
        let entries: Vec<_> = known.iter().collect();
        for chunk in entries.chunks(IDENTITY_BATCH) {
            let req = GetIdentityUpdatesRequest {
                requests: chunk
                    .iter()
                    .map(|(id, seq)| get_identity_updates_request::Request {
                        inbox_id: (*id).clone(),
                        sequence_id: **seq,
                    })
                    .collect(),
            };
            let resp = self.transport.get_identity_updates(req).await?;
            changed.extend(
                resp.responses
                    .into_iter()
                    .filter(|r| !r.updates.is_empty())
                    .map(|r| r.inbox_id),
            );
        }
        Ok(changed)
    }
}
