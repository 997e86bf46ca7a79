//! Identity lookups: address → inbox id, and an inbox's verified installations.

use std::collections::HashMap;

use futures::{StreamExt as _, TryStreamExt as _};
use xmtp_proto::associations::{replay, AssociationState};
use xmtp_proto::associations_proto::IdentifierKind;
use xmtp_proto::identity_api::{
    get_identity_updates_request, get_identity_updates_response, get_inbox_ids_request,
};
use xmtp_proto::identity_api::{GetIdentityUpdatesRequest, GetInboxIdsRequest};

use super::{parallel, Client};
use crate::error::ClientError;

/// libxmtp's batch size for identity lookups.
pub const IDENTITY_BATCH: usize = 50;
/// Identity calls in flight at once: a 500-recipient round is 10 calls, and one after the
/// other they cost 10 round trips.
const IDENTITY_CONCURRENCY: usize = 8;

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
        // Futures are collected first: a lazy `map` inside `stream::iter` makes the caller's
        // future non-Send (higher-ranked closure lifetimes).
        let calls: Vec<_> = lowered
            .chunks(IDENTITY_BATCH)
            .map(|chunk| {
                let req = GetInboxIdsRequest {
                    requests: chunk
                        .iter()
                        .map(|a| get_inbox_ids_request::Request {
                            identifier: a.clone(),
                            identifier_kind: IdentifierKind::Ethereum as i32,
                        })
                        .collect(),
                };
                self.transport.get_inbox_ids(req)
            })
            .collect();
        let responses: Vec<_> = futures::stream::iter(calls)
            .buffered(IDENTITY_CONCURRENCY)
            .try_collect()
            .await?;
        for r in responses.into_iter().flat_map(|resp| resp.responses) {
            out.insert(r.identifier, r.inbox_id);
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
        let requests = inbox_ids.iter().map(|id| (id, 0));
        let responses = self.identity_updates(requests).await?;
        // Replaying a log verifies its wallet signatures (secp256k1 recovery, the costliest
        // step of a first contact): spread it over the cores.
        let replayed = parallel::map(&responses, |r| {
            let last = r.updates.last()?.sequence_id;
            let updates: Vec<_> = r.updates.iter().filter_map(|u| u.update.as_ref()).collect();
            Some(
                replay(updates)
                    .map(|state| (state, last))
                    .map_err(|source| ClientError::Identity {
                        inbox_id: r.inbox_id.clone(),
                        source,
                    }),
            )
        });
        for (r, state) in responses.iter().zip(replayed) {
            if let Some(state) = state {
                let (state, sequence_id) = state?;
                out.insert(r.inbox_id.clone(), InboxState { state, sequence_id });
            }
        }
        Ok(out)
    }

    /// Inboxes (among `known`: inbox → sequence id we have) that have newer identity updates.
    pub(crate) async fn inboxes_with_updates(
        &self,
        known: &HashMap<String, u64>,
    ) -> Result<Vec<String>, ClientError> {
        let requests = known.iter().map(|(id, seq)| (id, *seq));
        Ok(self
            .identity_updates(requests)
            .await?
            .into_iter()
            .filter(|r| !r.updates.is_empty())
            .map(|r| r.inbox_id)
            .collect())
    }

    /// GetIdentityUpdates for (inbox, updates after this sequence id) pairs: ≤50 per call,
    /// [`IDENTITY_CONCURRENCY`] calls in flight.
    async fn identity_updates<'a>(
        &self,
        requests: impl Iterator<Item = (&'a String, u64)>,
    ) -> Result<Vec<get_identity_updates_response::Response>, ClientError> {
        let requests: Vec<_> = requests
            .map(|(id, seq)| get_identity_updates_request::Request {
                inbox_id: id.clone(),
                sequence_id: seq,
            })
            .collect();
        let calls: Vec<_> = requests
            .chunks(IDENTITY_BATCH)
            .map(|chunk| {
                self.transport
                    .get_identity_updates(GetIdentityUpdatesRequest {
                        requests: chunk.to_vec(),
                    })
            })
            .collect();
        let responses: Vec<_> = futures::stream::iter(calls)
            .buffered(IDENTITY_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(responses.into_iter().flat_map(|r| r.responses).collect())
    }
}
