//! Identity lookups: address → inbox id, and an inbox's verified installations.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use xmtp_proto::associations::{replay_all, AssociationState};
use xmtp_proto::associations_proto::IdentifierKind;
use xmtp_proto::identity_api::{
    get_identity_updates_request, get_identity_updates_response, get_inbox_ids_request,
};
use xmtp_proto::identity_api::{GetIdentityUpdatesRequest, GetInboxIdsRequest};

use super::{parallel, Client, DmBook, DmStatus};
use crate::error::ClientError;

/// libxmtp's batch size for identity lookups.
pub const IDENTITY_BATCH: usize = 50;
/// Identity calls in flight at once: a 500-recipient round is 10 calls, and one after the
/// other they cost 10 round trips.
const IDENTITY_CONCURRENCY: usize = 8;

/// How long a prefetched inbox state stands in for a fresh one when a DM is created (about
/// the delay between fetching the next batch's identities and creating its DMs, with room).
pub(super) const PREFETCH_FRESH: Duration = Duration::from_secs(30);

/// Identities verified ahead of the DM creations that need them, and the peers that need
/// none (a DM with them exists). Kept apart from the DM book, whose lock a send holds
/// throughout, so a prefetch runs while the previous batch is sent.
#[derive(Debug, Default)]
pub(super) struct Prefetch {
    /// Peers we have a ready DM with (a prefetch skips them).
    pub(super) ready: RwLock<HashSet<String>>,
    states: Mutex<HashMap<String, (Instant, InboxState)>>,
}

impl Prefetch {
    pub(super) fn with_peers(book: &DmBook) -> Self {
        let ready = book
            .records
            .values()
            .filter(|r| r.status == DmStatus::Ready)
            .map(|r| r.peer_inbox_id.clone())
            .collect();
        Self {
            ready: RwLock::new(ready),
            states: Mutex::default(),
        }
    }

    /// Records peers that now have a ready DM.
    pub(super) fn note_ready<'a>(&self, peers: impl IntoIterator<Item = &'a String>) {
        self.ready
            .write()
            .expect("poisoned")
            .extend(peers.into_iter().cloned());
    }

    /// Takes the still-fresh prefetched states of `ids`.
    fn take(&self, ids: &[String]) -> HashMap<String, InboxState> {
        let mut states = self.states.lock().expect("poisoned");
        let now = Instant::now();
        ids.iter()
            .filter_map(|id| {
                let (at, state) = states.remove(id)?;
                (now.duration_since(at) < PREFETCH_FRESH).then(|| (id.clone(), state))
            })
            .collect()
    }
}

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
        // Replaying a log verifies its signatures (secp256k1 recovery for the wallet's, the
        // costliest step of a first contact; Ed25519ph for the installations', checked as
        // one batch per core): spread it over the cores.
        let replayed =
            parallel::map_chunks(&responses, |chunk| {
                let logs: Vec<Vec<_>> = chunk
                    .iter()
                    .map(|r| r.updates.iter().filter_map(|u| u.update.as_ref()).collect())
                    .collect();
                let states = replay_all(&logs);
                chunk
                    .iter()
                    .zip(states)
                    .map(|(r, state)| {
                        let last = r.updates.last()?.sequence_id;
                        Some(state.map(|state| (state, last)).map_err(|source| {
                            ClientError::Identity {
                                inbox_id: r.inbox_id.clone(),
                                source,
                            }
                        }))
                    })
                    .collect()
            });
        for (r, state) in responses.iter().zip(replayed) {
            if let Some(state) = state {
                let (state, sequence_id) = state?;
                out.insert(r.inbox_id.clone(), InboxState { state, sequence_id });
            }
        }
        Ok(out)
    }

    /// The distinct `inbox_ids`, other than ours, we have no ready DM with and `keep` accepts.
    pub(super) fn without_ready_dm(
        &self,
        inbox_ids: &[String],
        keep: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let ready = self.prefetch.ready.read().expect("poisoned");
        inbox_ids
            .iter()
            .filter(|i| !ready.contains(*i) && **i != self.inbox_id && keep(i))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect()
    }

    /// Fetches and verifies now the identities of those `inbox_ids` we have no DM with, so
    /// the DM creation that follows within 30 s skips that step (a fifth of a first contact).
    /// Takes no lock a send holds: the delivery pipeline calls it for the next batch while the
    /// current one is sent. Returns how many states were fetched.
    pub async fn prefetch_inbox_states(&self, inbox_ids: &[String]) -> Result<usize, ClientError> {
        let wanted = self.without_ready_dm(inbox_ids, |_| true);
        if wanted.is_empty() {
            return Ok(0);
        }
        let fetched = self.inbox_states(&wanted).await?;
        let now = Instant::now();
        let mut states = self.prefetch.states.lock().expect("poisoned");
        states.retain(|_, (at, _)| now.duration_since(*at) < PREFETCH_FRESH);
        let n = fetched.len();
        states.extend(fetched.into_iter().map(|(id, s)| (id, (now, s))));
        Ok(n)
    }

    /// [`Client::inbox_states`], served from a fresh prefetch where there is one.
    pub(super) async fn inbox_states_prefetched(
        &self,
        inbox_ids: &[String],
    ) -> Result<HashMap<String, InboxState>, ClientError> {
        let mut out = self.prefetch.take(inbox_ids);
        let missing: Vec<String> = inbox_ids
            .iter()
            .filter(|i| !out.contains_key(*i))
            .cloned()
            .collect();
        if !missing.is_empty() {
            out.extend(self.inbox_states(&missing).await?);
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
