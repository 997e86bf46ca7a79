//! The node's state: identity logs, key packages, group messages, welcomes, commit logs.
//!
//! Everything lives in memory behind one mutex (critical sections are short and never
//! cross an `.await`). Each mutation is expressed as a journal [`Record`] and applied by
//! [`Inner::apply`], the single code path for both live writes and replay at start, so a
//! restarted `--data` node rebuilds exactly the state it acknowledged. New group messages
//! and welcomes are also broadcast (while the lock is held, so in id order) to the
//! subscription tasks.

mod d14n;
mod identity;
pub mod journal;
mod messages;
pub mod paging;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};
use xmtp_proto::mls_api::{
    group_message, welcome_message, GroupMessage, PagingInfo, WelcomeMessage,
};
use xmtp_proto::mls_contents::CommitLogEntry;

pub use identity::IdentityError;
use journal::{CommitLogRecord, Journal, KeyPackageRecord, Record, RecordKind};
pub use messages::{group_id_of, welcome_id_of};

/// How many undelivered live messages a subscriber may fall behind before it re-reads
/// from the store (see `service::subscribe`).
const BROADCAST_CAPACITY: usize = 16_384;

/// Storage failures (only possible with `--data`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening or reading the data directory failed. Not retryable.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The log writer failed earlier; the node no longer accepts writes. Not retryable.
    #[error("the devnode log could not be written")]
    JournalFailed,
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Shared node state.
pub struct Store {
    inner: Mutex<Inner>,
    groups_tx: broadcast::Sender<Arc<GroupMessage>>,
    welcomes_tx: broadcast::Sender<Arc<WelcomeMessage>>,
    /// Flips to true at shutdown so open subscriptions end and the server can stop.
    closing: watch::Sender<bool>,
    journal: Option<Journal>,
}

#[derive(Default)]
struct Inner {
    last_group_id: u64,
    last_welcome_id: u64,
    last_sequence_id: u64,
    last_commit_log_id: u64,
    groups: HashMap<Vec<u8>, Vec<GroupMessage>>,
    group_seen: HashSet<[u8; 32]>,
    welcomes: HashMap<Vec<u8>, Vec<WelcomeMessage>>,
    welcome_seen: HashSet<[u8; 32]>,
    identity: identity::Identities,
    key_packages: HashMap<Vec<u8>, Vec<u8>>,
    /// Upload counter and the upload number of each installation's current key package
    /// (d14n serves key packages with a sequence id; v3 has none).
    last_key_package_id: u64,
    key_package_ids: HashMap<Vec<u8>, u64>,
    commit_logs: HashMap<Vec<u8>, Vec<CommitLogEntry>>,
}

/// A write that is applied in memory and may still be on its way to disk.
#[must_use]
pub struct Ticket(Option<u64>);

impl Store {
    /// An empty in-memory store.
    pub fn in_memory() -> Arc<Self> {
        Arc::new(Self::with(Inner::default(), None))
    }

    /// A store persisted in `dir`, replaying what is already there.
    pub fn open(dir: &Path) -> Result<Arc<Self>, StoreError> {
        let (journal, records) = Journal::open(dir)?;
        let mut inner = Inner::default();
        for record in &records {
            inner.replay(record);
        }
        tracing::info!(records = records.len(), dir = %dir.display(), "devnode state loaded");
        Ok(Arc::new(Self::with(inner, Some(journal))))
    }

    fn with(inner: Inner, journal: Option<Journal>) -> Self {
        let (groups_tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (welcomes_tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (closing, _) = watch::channel(false);
        Self {
            inner: Mutex::new(inner),
            groups_tx,
            welcomes_tx,
            closing,
            journal,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("store lock poisoned")
    }

    /// Applies `record` and queues it for disk; the caller holds the lock.
    fn commit(&self, inner: &mut Inner, record: Record) -> Option<u64> {
        self.commit_digested(inner, record, None)
    }

    /// [`Store::commit`] of a message whose dedup digest the caller already computed.
    fn commit_digested(
        &self,
        inner: &mut Inner,
        record: Record,
        digest: Option<[u8; 32]>,
    ) -> Option<u64> {
        let ticket = self.journal.as_ref().map(|j| j.append(&record));
        inner.apply(record, digest, &self.groups_tx, &self.welcomes_tx);
        ticket
    }

    /// Waits until the writes of `ticket` are durable (immediately in memory mode).
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        match (ticket.0, &self.journal) {
            (Some(t), Some(j)) => j.wait(t).await,
            _ => Ok(()),
        }
    }

    /// Ends every open subscription (graceful server shutdown waits for open streams).
    pub fn end_subscriptions(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Store::end_subscriptions`] was called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Flushes the log (if any); call after the server stopped.
    pub async fn close(&self) {
        if let Some(j) = &self.journal {
            j.close().await;
        }
    }

    /// Live feeds of new group messages and welcomes, in id order.
    pub fn live_groups(&self) -> broadcast::Receiver<Arc<GroupMessage>> {
        self.groups_tx.subscribe()
    }

    pub fn live_welcomes(&self) -> broadcast::Receiver<Arc<WelcomeMessage>> {
        self.welcomes_tx.subscribe()
    }

    /// Stores the latest key package of an installation (overwriting the previous one).
    pub fn put_key_package(&self, installation_key: Vec<u8>, key_package: Vec<u8>) -> Ticket {
        let mut inner = self.lock();
        let record = RecordKind::KeyPackage(KeyPackageRecord {
            installation_key,
            key_package,
        });
        Ticket(self.commit(&mut inner, Record { kind: Some(record) }))
    }

    /// Key packages in request order; unknown installations give an empty entry.
    pub fn key_packages(&self, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let inner = self.lock();
        keys.iter()
            .map(|k| inner.key_packages.get(k).cloned().unwrap_or_default())
            .collect()
    }

    /// Appends commit-log entries, assigning their sequence ids.
    pub fn add_commit_log(&self, entries: Vec<(Vec<u8>, CommitLogEntry)>) -> Ticket {
        let mut inner = self.lock();
        let mut ticket = None;
        for (group_id, mut entry) in entries {
            entry.sequence_id = inner.last_commit_log_id + 1;
            let record = RecordKind::CommitLog(CommitLogRecord {
                group_id,
                entry: Some(entry),
            });
            ticket = self
                .commit(&mut inner, Record { kind: Some(record) })
                .or(ticket);
        }
        Ticket(ticket)
    }

    /// One page of a group's commit log.
    pub fn query_commit_log(
        &self,
        group_id: &[u8],
        paging: Option<&PagingInfo>,
    ) -> (Vec<CommitLogEntry>, PagingInfo) {
        let inner = self.lock();
        let items = inner
            .commit_logs
            .get(group_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        paging::page(items, |e| e.sequence_id, paging)
    }
}

impl Inner {
    /// Rebuilds state from a persisted record (identity updates are re-verified to rebuild
    /// their association state).
    fn replay(&mut self, record: &Record) {
        let (gtx, _) = broadcast::channel(1);
        let (wtx, _) = broadcast::channel(1);
        self.apply(record.clone(), None, &gtx, &wtx);
    }

    /// Applies `record`; `digest` is a message's dedup digest if the caller computed it.
    fn apply(
        &mut self,
        record: Record,
        digest_known: Option<[u8; 32]>,
        groups_tx: &broadcast::Sender<Arc<GroupMessage>>,
        welcomes_tx: &broadcast::Sender<Arc<WelcomeMessage>>,
    ) {
        match record.kind {
            Some(RecordKind::Group(m)) => {
                let Some(group_message::Version::V1(v)) = &m.version else {
                    return;
                };
                self.last_group_id = self.last_group_id.max(v.id);
                self.group_seen
                    .insert(digest_known.unwrap_or_else(|| digest(&v.group_id, &v.data)));
                self.groups
                    .entry(v.group_id.clone())
                    .or_default()
                    .push(m.clone());
                let _ = groups_tx.send(Arc::new(m));
            }
            Some(RecordKind::Welcome(m)) => {
                let (id, key, data) = match &m.version {
                    Some(welcome_message::Version::V1(v)) => (v.id, &v.installation_key, &v.data),
                    Some(welcome_message::Version::WelcomePointer(p)) => {
                        (p.id, &p.installation_key, &p.welcome_pointer)
                    }
                    None => return,
                };
                self.last_welcome_id = self.last_welcome_id.max(id);
                self.welcome_seen
                    .insert(digest_known.unwrap_or_else(|| digest(key, data)));
                self.welcomes
                    .entry(key.clone())
                    .or_default()
                    .push(m.clone());
                let _ = welcomes_tx.send(Arc::new(m));
            }
            Some(RecordKind::Identity(log)) => {
                self.last_sequence_id = self.last_sequence_id.max(log.sequence_id);
                self.identity.apply(log);
            }
            Some(RecordKind::KeyPackage(kp)) => {
                self.last_key_package_id += 1;
                self.key_package_ids
                    .insert(kp.installation_key.clone(), self.last_key_package_id);
                self.key_packages
                    .insert(kp.installation_key, kp.key_package);
            }
            Some(RecordKind::CommitLog(c)) => {
                let Some(entry) = c.entry else { return };
                self.last_commit_log_id = self.last_commit_log_id.max(entry.sequence_id);
                self.commit_logs.entry(c.group_id).or_default().push(entry);
            }
            None => {}
        }
    }
}

fn digest(topic: &[u8], data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(topic);
    h.update(data);
    h.finalize().into()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
