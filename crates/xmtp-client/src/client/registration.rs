//! Opening a client: loading its stored identity and DMs, or creating an installation for a
//! wallet (reusing the wallet's inbox when it has one), and registering it on the network
//! (key package, identity update) in an order that is safe to repeat after a crash.

use std::sync::Arc;

use openmls::prelude::tls_codec::Serialize as _;
use openmls_traits::OpenMlsProvider as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use xmtp_proto::identity_api::PublishIdentityUpdateRequest;
use xmtp_proto::mls_api::{KeyPackageUpload, UploadKeyPackageRequest};

use super::{
    dms, inbox, now_ns, welcomes, Client, DmBook, DmRecord, DM_PREFIX, SECONDARY_DM_PREFIX,
};
use crate::error::ClientError;
use crate::identity::{
    add_installation_update, create_inbox_update, Wallet, MAX_INSTALLATIONS_PER_INBOX,
};
use crate::mls::creator_leaf::CreatorLeaf;
use crate::mls::keypackage::build_key_package;
use crate::mls::provider::XmtpProvider;
use crate::mls::signer::InstallationKey;
use crate::storage::{Store, MLS_GLOBAL_PREFIX};
use crate::transport::Transport;

const IDENTITY_KEY: &[u8] = b"client/identity";

/// Our identity as stored. The installation seed is secret; `Debug` is not derived.
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    inbox_id: String,
    address: String,
    installation_seed: String,
    /// False until both the key package and the identity update were accepted by the node.
    registered: bool,
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
            creator_leaf: CreatorLeaf::default(),
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
            creator_leaf: CreatorLeaf::default(),
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
}
