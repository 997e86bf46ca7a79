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
mod welcomes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::MlsGroup;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use xmtp_proto::identity_api::PublishIdentityUpdateRequest;
use xmtp_proto::mls_api::{KeyPackageUpload, UploadKeyPackageRequest};

pub use inbox::InboxState;
pub use messages::{OutgoingText, SealedBatch, SendOptions};
pub use reading::ReceivedMessage;

use crate::error::ClientError;
use crate::identity::{
    add_installation_update, create_inbox_update, Wallet, MAX_INSTALLATIONS_PER_INBOX,
};
use crate::mls::keypackage::build_key_package;
use crate::mls::provider::XmtpProvider;
use crate::mls::signer::InstallationKey;
use crate::storage::{Store, MLS_GLOBAL_PREFIX};
use crate::transport::Transport;
use openmls_traits::OpenMlsProvider as _;

const IDENTITY_KEY: &[u8] = b"client/identity";
const DM_PREFIX: &[u8] = b"dm/";
const SECONDARY_DM_PREFIX: &[u8] = b"dmx/";

/// Our identity as stored. The installation seed is secret; `Debug` is not derived.
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    inbox_id: String,
    address: String,
    installation_seed: String,
    /// False until both the key package and the identity update were accepted by the node.
    registered: bool,
}

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
    /// Opens the client stored in `store`, or registers a new installation for `wallet`:
    /// reuses the wallet's existing inbox (adding an installation, refused past 10) or
    /// creates inbox `nonce 0`.
    pub async fn open(
        wallet: &Wallet,
        transport: Arc<dyn Transport>,
        store: Arc<dyn Store>,
    ) -> Result<Self, ClientError> {
        let client = match store.get(IDENTITY_KEY).await? {
            Some(raw) => {
                let client = Self::load(raw, transport, store).await?;
                if client.address != wallet.address() {
                    return Err(ClientError::WalletMismatch {
                        stored: client.address,
                        given: wallet.address(),
                    });
                }
                client
            }
            None => Self::create_identity(wallet, transport, store).await?,
        };
        client.ensure_registered(wallet).await?;
        Ok(client)
    }

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

    async fn load(
        raw: Vec<u8>,
        transport: Arc<dyn Transport>,
        store: Arc<dyn Store>,
    ) -> Result<Self, ClientError> {
        let id: StoredIdentity =
            serde_json::from_slice(&raw).map_err(|e| ClientError::CorruptState(e.to_string()))?;
        let seed: [u8; 32] = hex::decode(&id.installation_seed)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| ClientError::CorruptState("installation seed".into()))?;
        let provider = XmtpProvider::new();
        // Group state is loaded lazily (Client::ensure_group): start-up cost does not grow
        // with the number of DMs.
        provider
            .storage()
            .load(store.scan_prefix(MLS_GLOBAL_PREFIX).await?);
        let mut book = DmBook::default();
        let mut stored = store.scan_prefix(DM_PREFIX).await?;
        stored.extend(store.scan_prefix(SECONDARY_DM_PREFIX).await?);
        for (_, raw) in stored {
            let rec: DmRecord = serde_json::from_slice(&raw)
                .map_err(|e| ClientError::CorruptState(e.to_string()))?;
            book.put_record(rec);
        }
        Ok(Self {
            transport,
            store,
            provider,
            key: InstallationKey::from_seed(&seed),
            inbox_id: id.inbox_id,
            address: id.address,
            prefetch: inbox::Prefetch::with_peers(&book),
            prebuilt: dms::Prebuilt::default(),
            book: Mutex::new(book),
            sender_tag_key: None,
        })
    }

    async fn create_identity(
        wallet: &Wallet,
        transport: Arc<dyn Transport>,
        store: Arc<dyn Store>,
    ) -> Result<Self, ClientError> {
        let key = InstallationKey::generate();
        let address = wallet.address();
        let mut client = Self {
            transport,
            store,
            provider: XmtpProvider::new(),
            key,
            inbox_id: wallet.inbox_id(0),
            address: address.clone(),
            book: Mutex::new(DmBook::default()),
            sender_tag_key: None,
            prefetch: inbox::Prefetch::default(),
            prebuilt: dms::Prebuilt::default(),
        };
        if let Some(Some(existing)) = client
            .resolve_inbox_ids(&[address])
            .await?
            .into_values()
            .next()
        {
            client.inbox_id = existing;
        }
        // Persist the installation key before anything names it on the network.
        client.save_identity(false).await?;
        Ok(client)
    }

    async fn save_identity(&self, registered: bool) -> Result<(), ClientError> {
        let id = StoredIdentity {
            inbox_id: self.inbox_id.clone(),
            address: self.address.clone(),
            installation_seed: hex::encode(*self.key.to_seed()),
            registered,
        };
        let raw = serde_json::to_vec(&id).map_err(|e| ClientError::CorruptState(e.to_string()))?;
        self.persist(vec![(IDENTITY_KEY.to_vec(), Some(raw))]).await
    }

    /// Uploads a key package and publishes the identity update unless already done. Safe to
    /// repeat after a crash: the node keeps the latest key package and an update whose
    /// installation is already a member is not republished.
    async fn ensure_registered(&self, wallet: &Wallet) -> Result<(), ClientError> {
        let raw = self.store.get(IDENTITY_KEY).await?.unwrap_or_default();
        let stored: StoredIdentity =
            serde_json::from_slice(&raw).map_err(|e| ClientError::CorruptState(e.to_string()))?;
        if stored.registered {
            return Ok(());
        }
        let states = self
            .inbox_states(std::slice::from_ref(&self.inbox_id))
            .await?;
        let update = match states.get(&self.inbox_id) {
            Some(s)
                if s.state
                    .installations()
                    .iter()
                    .any(|i| i[..] == self.key.public_key()) =>
            {
                None
            }
            Some(s) => {
                let count = s.state.installations().len();
                if count >= MAX_INSTALLATIONS_PER_INBOX {
                    return Err(ClientError::TooManyInstallations {
                        inbox_id: self.inbox_id.clone(),
                        count,
                    });
                }
                Some(add_installation_update(
                    &self.inbox_id,
                    wallet,
                    &self.key,
                    now_ns(),
                ))
            }
            None => Some(create_inbox_update(wallet, &self.key, 0, now_ns())),
        };
        self.upload_key_package().await?;
        if let Some(update) = update {
            let req = PublishIdentityUpdateRequest {
                identity_update: Some(update),
            };
            self.transport.publish_identity_update(req).await?;
        }
        self.save_identity(true).await
    }

    /// Builds a fresh last-resort key package, stores its private keys, then uploads it.
    pub async fn upload_key_package(&self) -> Result<(), ClientError> {
        let bundle = build_key_package(&self.provider, &self.key, &self.inbox_id)
            .map_err(|e| crate::mls::dm::MlsError::InvalidKeyPackage(e.to_string()))?;
        let bytes = bundle
            .key_package()
            .tls_serialize_detached()
            .map_err(crate::mls::dm::MlsError::from)?;
        // Welcomes name the key package by its init key; remember which bundle that is.
        let hash_ref = bundle
            .key_package()
            .hash_ref(self.provider.crypto())
            .map_err(|e| crate::mls::dm::MlsError::Openmls(e.to_string()))?;
        let reference = serde_json::to_vec(&hash_ref).expect("hash refs serialize");
        let init_key = bundle.key_package().hpke_init_key().as_slice();
        self.persist(vec![(
            welcomes::key_package_ref_key(init_key),
            Some(reference),
        )])
        .await?;
        let req = UploadKeyPackageRequest {
            key_package: Some(KeyPackageUpload {
                key_package_tls_serialized: bytes,
            }),
            is_inbox_id_credential: true,
        };
        self.transport.upload_key_package(req).await?;
        Ok(())
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
