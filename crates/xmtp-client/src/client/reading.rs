//! Reading DMs: fetching new group messages, processing peers' commits, and handing out the
//! application messages others sent (stored durably until returned).

use std::collections::{HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

use openmls::prelude::MlsGroup;
use xmtp_proto::mls_api::{
    group_message, GroupMessage, PagingInfo, QueryGroupMessagesRequest, SortDirection,
};

use super::{Client, DmBook, DmRecord, DmStatus, OWN_UNSAVED_MAX};
use crate::error::ClientError;
use crate::mls::content::{decode_envelope, message_id as libxmtp_message_id};
use crate::mls::dm::{self, Incoming};
use openmls_traits::OpenMlsProvider as _;

/// Page size of QueryGroupMessages (the node's maximum).
const QUERY_PAGE: u32 = 100;
/// Concurrent QueryGroupMessages calls when syncing many DMs.
const SYNC_CONCURRENCY: usize = 32;
/// Store prefix of received-but-not-yet-returned messages.
const INBOX_PREFIX: &[u8] = b"rx/";

fn inbox_prefix(peer: &str) -> Vec<u8> {
    [INBOX_PREFIX, peer.as_bytes(), b"/"].concat()
}

fn inbox_write(peer: &str, m: &ReceivedMessage) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = [
        inbox_prefix(peer),
        format!("{:020}", m.node_id).into_bytes(),
    ]
    .concat();
    (
        key,
        Some(serde_json::to_vec(m).expect("messages serialize")),
    )
}

/// A message read from a DM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// Node id (ordering cursor).
    pub node_id: u64,
    /// Node timestamp.
    pub created_ns: u64,
    /// Sender inbox id.
    pub sender_inbox_id: String,
    /// Text, for `xmtp.org/text` content.
    pub text: Option<String>,
    /// The sender's idempotency key.
    pub idempotency_key: String,
    /// The message id the official SDKs show: libxmtp's SHA-256 over group id, idempotency key
    /// and content ([`crate::mls::content::message_id`]). `None` only for messages received
    /// and stored by a version that did not record it.
    #[serde(default)]
    pub id: Option<[u8; 32]>,
}

pub(super) fn message_id(m: &GroupMessage) -> Option<u64> {
    m.version
        .as_ref()
        .map(|group_message::Version::V1(v1)| v1.id)
}

impl Client {
    /// Reads new messages of the DM with `peer_inbox_id` (processing the peer's commits) and
    /// returns the application messages others sent, oldest first.
    pub async fn sync_dm(&self, peer_inbox_id: &str) -> Result<Vec<ReceivedMessage>, ClientError> {
        let mut book = self.book.lock().await;
        self.sync_locked(&mut book, peer_inbox_id).await?;
        // Hand out everything received so far (also during sends), then forget it.
        let prefix = inbox_prefix(peer_inbox_id);
        let stored = self.store.scan_prefix(&prefix).await?;
        let mut out = Vec::with_capacity(stored.len());
        let mut deletes = Vec::with_capacity(stored.len());
        for (k, v) in stored {
            out.push(
                serde_json::from_slice::<ReceivedMessage>(&v)
                    .map_err(|e| ClientError::CorruptState(e.to_string()))?,
            );
            deletes.push((k, None));
        }
        self.persist(deletes).await?;
        out.sort_by_key(|m| m.node_id);
        Ok(out)
    }

    /// [`Client::sync_dm`] for many peers at once: their DMs are fetched concurrently and the
    /// stored messages read in one scan. Returns each peer's new messages, oldest first;
    /// peers with nothing new are absent.
    pub async fn sync_dms(
        &self,
        peers: &[String],
    ) -> Result<HashMap<String, Vec<ReceivedMessage>>, ClientError> {
        let wanted: HashSet<&str> = peers.iter().map(String::as_str).collect();
        let mut book = self.book.lock().await;
        let records: Vec<DmRecord> = book
            .records
            .values()
            .filter(|r| r.status == DmStatus::Ready)
            .chain(book.secondary.values())
            .filter(|r| wanted.contains(r.peer_inbox_id.as_str()))
            .cloned()
            .collect();
        self.sync_records(&mut book, records).await?;
        let mut out: HashMap<String, Vec<ReceivedMessage>> = HashMap::new();
        let mut deletes = Vec::new();
        for (k, v) in self.store.scan_prefix(INBOX_PREFIX).await? {
            // Keys are `rx/<peer>/<node id>`; inbox ids contain no '/'.
            let peer = String::from_utf8_lossy(&k[INBOX_PREFIX.len()..])
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            if !wanted.contains(peer.as_str()) {
                continue;
            }
            let m = serde_json::from_slice::<ReceivedMessage>(&v)
                .map_err(|e| ClientError::CorruptState(e.to_string()))?;
            out.entry(peer).or_default().push(m);
            deletes.push((k, None));
        }
        self.persist(deletes).await?;
        for messages in out.values_mut() {
            messages.sort_by_key(|m| m.node_id);
        }
        Ok(out)
    }

    /// Syncs our primary DM with `peer` and any DM the peer created with us.
    pub(super) async fn sync_locked(
        &self,
        book: &mut DmBook,
        peer: &str,
    ) -> Result<(), ClientError> {
        let mut records: Vec<DmRecord> = book
            .records
            .get(peer)
            .filter(|r| r.status == DmStatus::Ready)
            .cloned()
            .into_iter()
            .collect();
        records.extend(
            book.secondary
                .values()
                .filter(|r| r.peer_inbox_id == peer)
                .cloned(),
        );
        self.sync_records(book, records).await
    }

    /// Fetches new messages of many DMs concurrently, then applies them in order per group.
    /// Application messages from peers are stored durably (under `rx/<peer>/`) in the same
    /// batch that advances the cursors, so a send-path sync never loses a reply.
    pub(super) async fn sync_records(
        &self,
        book: &mut DmBook,
        records: Vec<DmRecord>,
    ) -> Result<(), ClientError> {
        if records.is_empty() {
            // Nothing to read, so nothing to write: a flush here would write what the caller
            // changed before it meant to (a send's new DMs, ahead of their first message).
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let n = records.len();
        let gids: Vec<Vec<u8>> = records.iter().map(|r| r.group_id_bytes()).collect();
        self.ensure_groups(book, &gids).await?;
        let t_ensure = t0.elapsed();
        // Futures are collected first: a lazy `map` inside `stream::iter` makes the
        // caller's future non-Send (higher-ranked closure lifetimes).
        let fetches: Vec<_> = records
            .iter()
            .map(|r| Box::pin(self.fetch_after(r.group_id_bytes(), r.cursor)))
            .collect();
        let fetched: Vec<Vec<group_message::V1>> = futures::stream::iter(fetches)
            .buffered(SYNC_CONCURRENCY)
            .try_collect()
            .await?;
        let t_fetch = t0.elapsed();
        let mut writes = Vec::new();
        let mut updated = Vec::with_capacity(records.len());
        for (mut record, msgs) in records.into_iter().zip(fetched) {
            let seen = record.cursor;
            let gid = record.group_id_bytes();
            let group = book.groups.get_mut(&gid).ok_or_else(|| {
                ClientError::CorruptState(format!("group {} not loaded", record.group_id))
            })?;
            // Our own messages carry our sender tag: passed over without decrypting (MLS
            // cannot decrypt them for us anyway), unless an unmerged commit of ours may be
            // among them (see `process_one`).
            let (mut own, mut other) = (0u32, false);
            for v1 in msgs {
                record.cursor = record.cursor.max(v1.id);
                if self.is_own_message(group, &v1) {
                    own += 1;
                    continue;
                }
                other = true;
                if let Some(m) = self.process_one(group, &v1.data, v1.id, v1.created_ns) {
                    writes.push(inbox_write(&record.peer_inbox_id, &m));
                }
            }
            // A pending commit that no message confirmed was never published: drop it.
            if group.pending_commit().is_some() {
                group
                    .clear_pending_commit(self.provider.storage())
                    .map_err(|e| dm::MlsError::Openmls(format!("{e:?}")))?;
            }
            // Most DMs have nothing new, or only what we sent: rewriting their record would be
            // pure write volume.
            if record.cursor != seen {
                let unsaved = book.own_unsaved.entry(record.group_id.clone()).or_default();
                *unsaved += own;
                if other || *unsaved >= OWN_UNSAVED_MAX {
                    book.own_unsaved.remove(&record.group_id);
                    writes.push(Self::record_write(&record));
                }
            }
            updated.push(record);
        }
        let t_process = t0.elapsed();
        let written = writes.len();
        self.persist(writes).await?;
        for record in updated {
            book.put_record(record);
        }
        tracing::debug!(target: "xmtp_client::timing", n, written, ?t_ensure, ?t_fetch, ?t_process, total = ?t0.elapsed(), "sync_records");
        Ok(())
    }

    /// All group messages after `cursor`, oldest first (pages of 100).
    async fn fetch_after(
        &self,
        group_id: Vec<u8>,
        mut cursor: u64,
    ) -> Result<Vec<group_message::V1>, ClientError> {
        let mut out = Vec::new();
        loop {
            let req = QueryGroupMessagesRequest {
                group_id: group_id.clone(),
                paging_info: Some(PagingInfo {
                    direction: SortDirection::Ascending as i32,
                    limit: QUERY_PAGE,
                    id_cursor: cursor,
                }),
            };
            let page = self.transport.query_group_messages(req).await?.messages;
            let full = page.len() as u32 >= QUERY_PAGE;
            for msg in page {
                if let Some(group_message::Version::V1(v1)) = msg.version {
                    cursor = cursor.max(v1.id);
                    out.push(v1);
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Whether `v1` is a message we published (our sender tag verifies) that needs no
    /// processing: always, unless the group has a pending commit, which only its published
    /// copy confirms.
    fn is_own_message(&self, group: &MlsGroup, v1: &group_message::V1) -> bool {
        let Some(key) = &self.sender_tag_key else {
            return false;
        };
        group.pending_commit().is_none()
            && crate::sender_tag::is_own(key, &v1.data, &v1.sender_hmac)
    }

    /// Processes one group message. Our own messages cannot be decrypted by us (MLS): they
    /// are skipped, except that our own unmerged commit at the current epoch proves it was
    /// published before a crash, so it is merged now.
    fn process_one(
        &self,
        group: &mut MlsGroup,
        data: &[u8],
        node_id: u64,
        created_ns: u64,
    ) -> Option<ReceivedMessage> {
        match dm::process(&self.provider, group, data) {
            Ok(Incoming::Application {
                payload,
                sender_inbox_id,
            }) => {
                let sender = sender_inbox_id?;
                if sender == self.inbox_id {
                    return None;
                }
                let decoded = decode_envelope(&payload)?;
                let id = libxmtp_message_id(
                    group.group_id().as_slice(),
                    &decoded.idempotency_key,
                    &decoded.encoded_content,
                );
                Some(ReceivedMessage {
                    node_id,
                    created_ns,
                    sender_inbox_id: sender,
                    text: decoded.text,
                    idempotency_key: decoded.idempotency_key,
                    id: Some(id),
                })
            }
            Ok(_) => None,
            Err(e) => {
                if group.pending_commit().is_some()
                    && is_commit_at_epoch(data, group.epoch().as_u64())
                {
                    let _ = dm::merge_pending(&self.provider, group);
                } else {
                    tracing::debug!(node_id, error = %e, "skipping undecryptable group message");
                }
                None
            }
        }
    }
}

/// Whether cleartext PrivateMessage header says: commit (content type 3) at `epoch`.
fn is_commit_at_epoch(data: &[u8], epoch: u64) -> bool {
    // version u16, wire_format u16 (2 = private), group_id<V>, epoch u64, content_type u8.
    if data.len() < 5 || data[2..4] != [0, 2] {
        return false;
    }
    let (len, skip) = match data[4] >> 6 {
        0 => (usize::from(data[4] & 0x3f), 1),
        1 if data.len() > 5 => (
            usize::from(u16::from_be_bytes([data[4] & 0x3f, data[5]])),
            2,
        ),
        _ => return false,
    };
    let at = 4 + skip + len;
    let Some(epoch_bytes) = data.get(at..at + 8) else {
        return false;
    };
    let msg_epoch = u64::from_be_bytes(epoch_bytes.try_into().expect("8 bytes"));
    msg_epoch == epoch && data.get(at + 8) == Some(&3)
}
