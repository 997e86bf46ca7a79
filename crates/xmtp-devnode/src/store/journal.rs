//! Persistence for `--data DIR`: an append-only, fsync'd log of state changes.
//!
//! Every mutation of the node is one [`Record`], applied in memory and appended to
//! `DIR/devnode.log` as `u32 little-endian length || protobuf`. Writers do not fsync one by
//! one: a single writer task takes everything appended since its last round, writes and
//! `fdatasync`s it, then releases all callers waiting on it (group commit). At start the
//! log is replayed; a torn tail from a crash is cut off.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use xmtp_proto::identity_api::get_identity_updates_response::IdentityUpdateLog;
use xmtp_proto::mls_api::{GroupMessage, WelcomeMessage};
use xmtp_proto::mls_contents::CommitLogEntry;

use super::StoreError;

const FILE_NAME: &str = "devnode.log";

/// One state change, as persisted.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(oneof = "RecordKind", tags = "1, 2, 3, 4, 5")]
    pub kind: Option<RecordKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RecordKind {
    #[prost(message, tag = "1")]
    Identity(IdentityUpdateLog),
    #[prost(message, tag = "2")]
    KeyPackage(KeyPackageRecord),
    #[prost(message, tag = "3")]
    Group(GroupMessage),
    #[prost(message, tag = "4")]
    Welcome(WelcomeMessage),
    #[prost(message, tag = "5")]
    CommitLog(CommitLogRecord),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyPackageRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub installation_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub key_package: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitLogRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub entry: Option<CommitLogEntry>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    ticket: u64,
    closing: bool,
}

#[derive(Clone, Copy, Default)]
struct Durable {
    upto: u64,
    failed: bool,
}

/// Handle on the log file and its writer task.
pub struct Journal {
    pending: Arc<Mutex<Pending>>,
    notify: Arc<Notify>,
    durable: watch::Receiver<Durable>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Journal {
    /// Opens (or creates) the log in `dir`, returning it and the records already in it.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Record>), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good) = decode_all(&bytes);
        if good < bytes.len() {
            tracing::warn!(path = %path.display(), dropped = bytes.len() - good, "cutting torn tail off the devnode log");
            file.set_len(good as u64)?;
            file.sync_all()?;
        }
        let pending = Arc::new(Mutex::new(Pending::default()));
        let notify = Arc::new(Notify::new());
        let (tx, durable) = watch::channel(Durable::default());
        let writer = tokio::spawn(write_loop(file, pending.clone(), notify.clone(), tx));
        let journal = Self {
            pending,
            notify,
            durable,
            writer: Mutex::new(Some(writer)),
        };
        Ok((journal, records))
    }

    /// Queues `record`; the returned ticket can be awaited with [`Journal::wait`].
    /// Callers append while holding the store lock, so the file keeps the store's order.
    pub fn append(&self, record: &Record) -> u64 {
        let mut p = self.pending.lock().expect("journal lock poisoned");
        let len = record.encoded_len();
        p.buf.extend_from_slice(&(len as u32).to_le_bytes());
        record.encode(&mut p.buf).expect("Vec<u8> grows as needed");
        p.ticket += 1;
        let ticket = p.ticket;
        drop(p);
        self.notify.notify_one();
        ticket
    }

    /// Resolves once everything up to `ticket` is on disk.
    pub async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut rx = self.durable.clone();
        let d = *rx
            .wait_for(|d| d.failed || d.upto >= ticket)
            .await
            .map_err(|_| StoreError::JournalFailed)?;
        if d.failed && d.upto < ticket {
            return Err(StoreError::JournalFailed);
        }
        Ok(())
    }

    /// Flushes what is pending and stops the writer.
    pub async fn close(&self) {
        self.pending.lock().expect("journal lock poisoned").closing = true;
        self.notify.notify_one();
        let handle = self.writer.lock().expect("journal lock poisoned").take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

async fn write_loop(
    mut file: File,
    pending: Arc<Mutex<Pending>>,
    notify: Arc<Notify>,
    tx: watch::Sender<Durable>,
) {
    loop {
        notify.notified().await;
        let (buf, ticket, closing) = {
            let mut p = pending.lock().expect("journal lock poisoned");
            (std::mem::take(&mut p.buf), p.ticket, p.closing)
        };
        if !buf.is_empty() {
            let written = tokio::task::spawn_blocking(move || {
                file.write_all(&buf)?;
                file.sync_data()?;
                Ok::<_, std::io::Error>(file)
            })
            .await;
            match written {
                Ok(Ok(f)) => {
                    file = f;
                    tx.send_replace(Durable {
                        upto: ticket,
                        failed: false,
                    });
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "devnode log write failed; writes now fail");
                    tx.send_modify(|d| d.failed = true);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "devnode log writer panicked");
                    tx.send_modify(|d| d.failed = true);
                    return;
                }
            }
        }
        if closing {
            return;
        }
    }
}

/// Decodes length-prefixed records; returns them and how many bytes were intact.
fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 4 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            break;
        };
        match Record::decode(body) {
            Ok(r) if r.kind.is_some() => records.push(r),
            _ => break,
        }
        at += 4 + len;
    }
    (records, at)
}
