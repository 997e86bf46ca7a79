//! Creating DMs (one at a time or in batches) and adding installations a peer gained later.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::{StreamExt as _, TryStreamExt as _};
use openmls::prelude::{KeyPackage, MlsGroup};
use prost::Message as _;
use xmtp_proto::mls_api::{
    group_message_input, welcome_message_input, FetchKeyPackagesRequest, GroupMessageInput,
    PagingInfo, QueryGroupMessagesRequest, SendGroupMessagesRequest, SendWelcomeMessagesRequest,
    SortDirection, WelcomeMessageInput, WelcomeMetadata,
};
use xmtp_proto::mls_contents::WelcomeWrapperAlgorithm;

use super::inbox::{InboxState, PREFETCH_FRESH};
use super::{parallel, Client, DmBook, DmRecord, DmStatus};
use crate::error::ClientError;
use crate::mls::dm::{self, CommitOutput};
use crate::mls::group_ext::DmSpec;
use crate::mls::welcome::wrap_welcome;

mod keypackages;
mod prebuild;

use keypackages::ValidKeyPackages;
pub(super) use prebuild::Prebuilt;

/// libxmtp sends at most this many welcomes per SendWelcomeMessages call.
pub const WELCOME_BATCH: usize = 50;
/// Concurrent QueryGroupMessages calls when reading back commit cursors.
const CURSOR_QUERY_CONCURRENCY: usize = 32;
/// Group messages (commits or application messages) per SendGroupMessages call.
pub const GROUP_MESSAGE_BATCH: usize = 100;

/// A validated key package and the installation it belongs to.
pub(super) struct Recipient {
    pub(super) installation: Vec<u8>,
    pub(super) key_package: KeyPackage,
}

/// A DM whose commit is built but not yet published.
pub(super) struct PendingDm {
    record: DmRecord,
    group: MlsGroup,
    output: CommitOutput,
    recipients: Vec<Recipient>,
}

/// Who makes new DMs durable ([`Client::create_dms_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durable {
    /// The creation writes them before it returns.
    Now,
    /// The caller writes the returned records with its next persist.
    ByCaller,
}

impl Client {
    /// The DM with `peer_inbox_id`, created (commit, then welcomes) if it does not exist yet.
    /// Returns the group id.
    pub async fn find_or_create_dm(&self, peer_inbox_id: &str) -> Result<Vec<u8>, ClientError> {
        let mut results = self.create_dms(&[peer_inbox_id.to_owned()]).await?;
        results
            .remove(peer_inbox_id)
            .unwrap_or_else(|| Err(ClientError::UnknownInbox(peer_inbox_id.to_owned())))
    }

    /// Finds or creates DMs with many peers: one identity round, one FetchKeyPackages call,
    /// commits in batched SendGroupMessages calls and welcomes in batches of 50. The outer
    /// error means the whole batch failed (nothing usable was created); inner errors are per
    /// peer (unknown inbox, no valid key package).
    pub async fn create_dms(
        &self,
        peers: &[String],
    ) -> Result<HashMap<String, Result<Vec<u8>, ClientError>>, ClientError> {
        let mut book = self.book.lock().await;
        let (out, _) = self.create_dms_in(&mut book, peers, Durable::Now).await?;
        Ok(out)
    }

    /// [`Client::create_dms`] under the caller's book lock. With [`Durable::ByCaller`] the
    /// new DMs are in the book but not written: the caller writes the returned records with
    /// its own next persist, before it publishes anything in them, or calls
    /// [`Client::forget_new_dms`] if that fails.
    pub(super) async fn create_dms_in(
        &self,
        book: &mut DmBook,
        peers: &[String],
        durable: Durable,
    ) -> Result<(HashMap<String, Result<Vec<u8>, ClientError>>, Vec<DmRecord>), ClientError> {
        let mut out = HashMap::new();
        let mut todo = Vec::new();
        for peer in peers.iter().collect::<HashSet<_>>() {
            match book.records.get(peer) {
                Some(r) if r.status == DmStatus::Ready => {
                    out.insert(peer.clone(), Ok(r.group_id_bytes()));
                }
                _ if *peer == self.inbox_id => {
                    out.insert(peer.clone(), Err(ClientError::UnknownInbox(peer.clone())));
                }
                _ => todo.push(peer.clone()),
            }
        }
        if todo.is_empty() {
            return Ok((out, Vec::new()));
        }
        let t0 = std::time::Instant::now();
        // DMs built ahead (the delivery pipeline builds the next batch's while this one is
        // sealed) are only published; the rest are built now.
        let mut pending: Vec<PendingDm> = self.prebuilt.take(&todo).into_values().collect();
        let todo: Vec<String> = todo
            .into_iter()
            .filter(|peer| !pending.iter().any(|p| p.record.peer_inbox_id == *peer))
            .collect();
        let prebuilt = pending.len();
        for (peer, dm) in todo.iter().zip(self.build_dms(&todo).await?) {
            match dm {
                Ok(p) => pending.push(p),
                Err(e) => {
                    out.insert(peer.clone(), Err(e));
                }
            }
        }
        let t_build = t0.elapsed();
        let created = self.publish_new_dms(book, pending, durable).await?;
        for r in &created {
            out.insert(r.peer_inbox_id.clone(), Ok(r.group_id_bytes()));
        }
        tracing::debug!(target: "xmtp_client::timing", prebuilt, ?t_build, total = ?t0.elapsed(), "create_dms");
        Ok((out, created))
    }

    /// Takes DMs [`Client::create_dms_in`] left to the caller to write out of the book (the
    /// write failed): a retry creates fresh ones, as after a crash.
    pub(super) fn forget_new_dms(&self, book: &mut DmBook, created: &[DmRecord]) {
        for r in created {
            book.records.remove(&r.peer_inbox_id);
            book.groups.remove(&r.group_id_bytes());
        }
    }

    /// Builds DMs with `peers` (none ready), publishing nothing: identities verified (from a
    /// fresh prefetch where there is one), one FetchKeyPackages call, key packages validated
    /// and commits and welcomes made in parallel. The outer error means nothing could be built; inner ones are per
    /// peer, in order.
    async fn build_dms(
        &self,
        peers: &[String],
    ) -> Result<Vec<Result<PendingDm, ClientError>>, ClientError> {
        if peers.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = self.inbox_states_prefetched(peers).await?;
        // Our own state is always fetched now: it lists the installations the DM includes.
        states.extend(
            self.inbox_states(std::slice::from_ref(&self.inbox_id))
                .await?,
        );
        let me = states
            .get(&self.inbox_id)
            .ok_or_else(|| ClientError::UnknownInbox(self.inbox_id.clone()))?;
        let key_packages = self.fetch_key_packages(peers, &states).await?;
        Ok(parallel::map(peers, |peer| match states.get(peer) {
            Some(peer_state) => self.build_dm(peer, me, peer_state, &key_packages),
            None => Err(ClientError::UnknownInbox(peer.clone())),
        }))
    }

    fn build_dm(
        &self,
        peer: &str,
        me: &InboxState,
        peer_state: &InboxState,
        key_packages: &ValidKeyPackages,
    ) -> Result<PendingDm, ClientError> {
        let (mut recipients, mut failed) =
            self.recipients_for(peer, &peer_state.state.installations(), key_packages);
        if recipients.is_empty() {
            return Err(ClientError::NoKeyPackages(peer.to_owned()));
        }
        let (mine, my_failed) =
            self.recipients_for(&self.inbox_id, &me.state.installations(), key_packages);
        recipients.extend(mine);
        failed.extend(my_failed);
        let membership = HashMap::from([
            (self.inbox_id.clone(), me.sequence_id),
            (peer.to_owned(), peer_state.sequence_id),
        ]);
        let spec = DmSpec {
            creator_inbox_id: self.inbox_id.clone(),
            peer_inbox_id: peer.to_owned(),
            membership: membership.clone(),
            failed_installations: failed,
        };
        let kps: Vec<KeyPackage> = recipients.iter().map(|r| r.key_package.clone()).collect();
        let (group, output) =
            dm::create_dm_sharing_leaf(&self.provider, &self.key, &self.creator_leaf, &spec, &kps)?;
        let record = DmRecord {
            peer_inbox_id: peer.to_owned(),
            group_id: hex::encode(group.group_id().as_slice()),
            status: DmStatus::Pending,
            cursor: 0,
            membership,
            secondary: false,
        };
        Ok(PendingDm {
            record,
            group,
            output,
            recipients,
        })
    }

    /// Publishes commits, merges, sends welcomes, then persists the DMs as ready in one write.
    ///
    /// Nothing is written before the commits go out: a new group has no earlier state whose
    /// keys could be reused, so a crash before the final write only orphans groups nobody can
    /// send in (a peer that already got the welcome sees a second, empty DM, as libxmtp
    /// allows), and the retry creates fresh ones. One write instead of three per round.
    async fn publish_new_dms(
        &self,
        book: &mut DmBook,
        mut pending: Vec<PendingDm>,
        durable: Durable,
    ) -> Result<Vec<DmRecord>, ClientError> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let t0 = std::time::Instant::now();
        // 1. Commits (DMs whose commit is refused are given up: nothing of them was written).
        let commits: Vec<Vec<u8>> = pending.iter().map(|p| p.output.commit.clone()).collect();
        if let Err(e) = self.send_group_messages(commits, false).await {
            for p in &pending {
                dm::discard_creation(&self.provider, &p.group);
            }
            return Err(e);
        }
        let merged = parallel::map_mut(&mut pending, |p| {
            dm::merge_creation(&self.provider, &mut p.group)
        });
        merged.into_iter().collect::<Result<Vec<()>, _>>()?;
        // 2. The commit's node id seeds the joiners' read cursor: one query per DM, run
        //    concurrently on the shared HTTP/2 connection.
        let queries: Vec<_> = pending
            .iter()
            .map(|p| Box::pin(self.latest_message_id(p.group.group_id().as_slice())))
            .collect();
        let cursors: Vec<u64> = futures::stream::iter(queries)
            .buffered(CURSOR_QUERY_CONCURRENCY)
            .try_collect()
            .await?;
        let t_commits = t0.elapsed();
        for (p, cursor) in pending.iter_mut().zip(cursors) {
            p.record.cursor = cursor;
        }
        let wrapped = parallel::map(&pending, |p| {
            self.wrap_welcomes(&p.output.welcome, &p.recipients, p.record.cursor)
        });
        let mut welcomes = Vec::new();
        for w in wrapped {
            welcomes.extend(w?);
        }
        let t_wrap = t0.elapsed();
        // 3. Welcomes, then the DMs become usable once their state is durable.
        self.send_welcomes(welcomes).await?;
        let t_welcomes = t0.elapsed();
        for p in &mut pending {
            p.record.status = DmStatus::Ready;
        }
        if durable == Durable::Now {
            self.persist(
                pending
                    .iter()
                    .map(|p| Self::record_write(&p.record))
                    .collect(),
            )
            .await?;
            self.prefetch
                .note_ready(pending.iter().map(|p| &p.record.peer_inbox_id));
        }
        tracing::debug!(target: "xmtp_client::timing", ?t_commits, ?t_wrap, ?t_welcomes, total = ?t0.elapsed(), "publish_new_dms");
        let mut created = Vec::new();
        for p in pending {
            created.push(p.record.clone());
            book.groups.insert(p.record.group_id_bytes(), p.group);
            book.records
                .insert(p.record.peer_inbox_id.clone(), p.record);
        }
        Ok(created)
    }

    pub(super) fn wrap_welcomes(
        &self,
        welcome: &[u8],
        recipients: &[Recipient],
        cursor: u64,
    ) -> Result<Vec<WelcomeMessageInput>, ClientError> {
        let metadata = WelcomeMetadata {
            message_cursor: cursor,
        }
        .encode_to_vec();
        recipients
            .iter()
            .map(|r| {
                let init_key = r.key_package.hpke_init_key().as_slice().to_vec();
                let wrapped = wrap_welcome(welcome, &metadata, &init_key)?;
                Ok(WelcomeMessageInput {
                    version: Some(welcome_message_input::Version::V1(
                        welcome_message_input::V1 {
                            installation_key: r.installation.clone(),
                            data: wrapped.data,
                            hpke_public_key: init_key,
                            wrapper_algorithm: WelcomeWrapperAlgorithm::Curve25519 as i32,
                            welcome_metadata: wrapped.welcome_metadata,
                        },
                    )),
                })
            })
            .collect()
    }

    pub(super) async fn send_welcomes(
        &self,
        welcomes: Vec<WelcomeMessageInput>,
    ) -> Result<(), ClientError> {
        for chunk in welcomes.chunks(WELCOME_BATCH) {
            let req = SendWelcomeMessagesRequest {
                messages: chunk.to_vec(),
            };
            self.transport.send_welcome_messages(req).await?;
        }
        Ok(())
    }

    pub(super) async fn send_group_messages(
        &self,
        data: Vec<Vec<u8>>,
        should_push: bool,
    ) -> Result<(), ClientError> {
        for chunk in data.chunks(GROUP_MESSAGE_BATCH) {
            let messages = chunk
                .iter()
                .map(|d| GroupMessageInput {
                    version: Some(group_message_input::Version::V1(group_message_input::V1 {
                        data: d.clone(),
                        sender_hmac: self.sender_hmac(d),
                        should_push,
                    })),
                })
                .collect();
            self.transport
                .send_group_messages(SendGroupMessagesRequest { messages })
                .await?;
        }
        Ok(())
    }

    /// Node id of the newest message of a group (0 if none).
    pub(super) async fn latest_message_id(&self, group_id: &[u8]) -> Result<u64, ClientError> {
        let req = QueryGroupMessagesRequest {
            group_id: group_id.to_vec(),
            paging_info: Some(PagingInfo {
                direction: SortDirection::Descending as i32,
                limit: 1,
                id_cursor: 0,
            }),
        };
        let resp = self.transport.query_group_messages(req).await?;
        Ok(resp
            .messages
            .first()
            .and_then(super::messages::message_id)
            .unwrap_or(0))
    }
}
