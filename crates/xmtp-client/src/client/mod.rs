//! [`Client`]: one XMTP installation that creates DMs, sends text and reads replies.
//!
//! State lives in a [`Store`]; MLS groups stay resident in memory after [`Client::open`] so a
//! fan-out never reloads serialized state per message (research: that halves throughput).
//! Every operation follows the crash-safe ordering documented in [`crate::storage`]: change
//! state in memory, write it with one atomic [`Store::write_batch`], then publish.

mod dms;
mod groups;
mod inbox;
mod installations;
mod messages;
mod outgoing;
mod parallel;
mod reading;
mod registration;
mod welcomes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openmls::prelude::MlsGroup;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use inbox::InboxState;
pub use messages::{OutgoingText, SealedBatch, SendOptions};
pub use reading::ReceivedMessage;

use crate::error::ClientError;
use crate::mls::creator_leaf::CreatorLeaf;
use crate::mls::provider::XmtpProvider;
use crate::mls::signer::InstallationKey;
use crate::storage::Store;
use crate::transport::Transport;
use openmls_traits::OpenMlsProvider as _;

const DM_PREFIX: &[u8] = b"dm/";
const SECONDARY_DM_PREFIX: &[u8] = b"dmx/";

/// Lifecycle of a DM we created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum DmStatus {
    /// Group state exists locally but the welcomes may not all be out: recreate on retry.
    Pending,
    /// Commit and welcomes published; usable for sending.
    Ready,
}

/// What we remember about one DM, keyed by the peer inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DmRecord {
    peer_inbox_id: String,
    group_id: String,
    status: DmStatus,
    /// Node id of the last group message processed.
    cursor: u64,
    /// Inbox → identity sequence id the group membership reflects.
    membership: HashMap<String, u64>,
    /// A DM the peer created with us while we already had one: read, never sent to.
    #[serde(default)]
    secondary: bool,
}

impl DmRecord {
    fn key(&self) -> Vec<u8> {
        if self.secondary {
            [SECONDARY_DM_PREFIX, self.group_id.as_bytes()].concat()
        } else {
            [DM_PREFIX, self.peer_inbox_id.as_bytes()].concat()
        }
    }

    fn group_id_bytes(&self) -> Vec<u8> {
        hex::decode(&self.group_id).unwrap_or_default()
    }
}

/// Resident DM state guarded by one lock: records plus live openmls groups.
#[derive(Default)]
struct DmBook {
    /// Peer inbox → the DM we send on.
    records: HashMap<String, DmRecord>,
    /// Group id (hex) → further DMs with a peer that we only read.
    secondary: HashMap<String, DmRecord>,
    groups: HashMap<Vec<u8>, MlsGroup>,
    /// Peer inbox → when a send last brought its DM up to date (memory only).
    checked: HashMap<String, std::time::Instant>,
    /// Group id (hex) → our own messages a sync passed over since the DM's record was last
    /// written (memory only; see [`OWN_UNSAVED_MAX`]).
    own_unsaved: HashMap<String, u32>,
}

/// Our own messages a sync may pass over before the DM's advanced read cursor is written. A
/// broadcast-only DM would otherwise rewrite its record after every announcement; a stale
/// stored cursor only makes the first sync after a restart skip those messages again (by
/// their sender tag, without decrypting), one query page at most.
const OWN_UNSAVED_MAX: u32 = 100;

impl DmBook {
    fn put_record(&mut self, record: DmRecord) {
        if record.secondary {
            self.secondary.insert(record.group_id.clone(), record);
        } else {
            self.records.insert(record.peer_inbox_id.clone(), record);
        }
    }
}

/// A registered XMTP installation.
pub struct Client {
    transport: Arc<dyn Transport>,
    store: Arc<dyn Store>,
    provider: XmtpProvider,
    key: InstallationKey,
    inbox_id: String,
    address: String,
    book: Mutex<DmBook>,
    /// Key of the `sender_hmac` of published messages ([`crate::sender_tag`]); random if unset.
    sender_tag_key: Option<[u8; 32]>,
    /// Identities verified ahead of a DM creation ([`Client::prefetch_inbox_states`]).
    prefetch: inbox::Prefetch,
    /// DMs built ahead of their creation ([`Client::prebuild_dms`]).
    prebuilt: dms::Prebuilt,
    /// The leaf our new DMs share while it is current ([`CreatorLeaf`]).
    creator_leaf: CreatorLeaf,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("inbox_id", &self.inbox_id)
            .field("installation", &hex::encode(self.key.public_key()))
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Client {
    /// Our inbox id.
    pub fn inbox_id(&self) -> &str {
        &self.inbox_id
    }

    /// Our wallet address (lowercase).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Our installation id (Ed25519 public key).
    pub fn installation_id(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// Writes all dirty MLS state plus `extra` in one atomic batch. On failure the MLS changes
    /// are kept dirty so the next flush retries them.
    async fn persist(&self, extra: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), ClientError> {
        let mut batch = self.provider.storage().take_dirty();
        let mls = batch.len();
        batch.extend(extra);
        if let Err(e) = self.store.write_batch(&batch).await {
            batch.truncate(mls);
            self.provider.storage().restore_dirty(batch);
            return Err(e.into());
        }
        Ok(())
    }

    /// Tags every message this client publishes with HMAC-SHA256(key, ciphertext) as its
    /// `sender_hmac`, so a holder of the key can skip our own messages on a stream.
    pub fn with_sender_tag_key(mut self, key: [u8; 32]) -> Self {
        self.sender_tag_key = Some(key);
        self
    }

    /// The `sender_hmac` for a message we publish.
    fn sender_hmac(&self, data: &[u8]) -> Vec<u8> {
        match &self.sender_tag_key {
            Some(key) => crate::sender_tag::sender_tag(key, data),
            // Only push servers read the HMAC; a random tag reveals nothing.
            None => rand::random::<[u8; 32]>().to_vec(),
        }
    }

    fn record_write(rec: &DmRecord) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            rec.key(),
            Some(serde_json::to_vec(rec).expect("records always serialize")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_shareable_across_tasks() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Client>();
    }
}
