//! A channel acting on XMTP: its wallet opened from the sealed key, its client state in the
//! database, and registration of its identity (inbox + installation) on the network.

use std::sync::Arc;

use chrono::Utc;
use xmtp_client::{Client, ClientError, Wallet};

use super::state::ChannelState;
use super::Xmtp;
use crate::crypto::{ChannelWallet, MasterKey};
use crate::domain::ChannelId;
use crate::store::pipeline::{ChannelSecret, SenderLease};
use crate::store::{Store, StoreError};

/// Why a channel could not act on XMTP.
#[derive(Debug, thiserror::Error)]
pub enum ChannelXmtpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The channel is gone (deleted or never existed). Not retryable.
    #[error("channel is deleted")]
    Gone,
    /// The sealed wallet key does not open. Not retryable.
    #[error("channel wallet key does not open with the master key")]
    Sealed,
    /// Another worker holds the channel. Retryable later.
    #[error("channel is busy")]
    Busy,
}

impl ChannelXmtpError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ChannelXmtpError::Store(e) => e.is_retryable(),
            ChannelXmtpError::Client(e) => e.is_retryable(),
            ChannelXmtpError::Busy => true,
            ChannelXmtpError::Gone | ChannelXmtpError::Sealed => false,
        }
    }
}

/// Opens (registering on first use) the channel's XMTP client under `lease`, and records the
/// identity on the channel row the first time. Returns the client and its state handle.
pub async fn open_client(
    store: &Arc<dyn Store>,
    kek: &Arc<MasterKey>,
    xmtp: &Xmtp,
    lease: &SenderLease,
) -> Result<(Client, Arc<ChannelState>), ChannelXmtpError> {
    let (secret, wallet) = channel_wallet(store, kek, &lease.channel).await?;
    let state = Arc::new(ChannelState::new(store.clone(), kek.clone(), lease.clone()));
    let client = Client::open(&wallet, xmtp.transport.clone(), state.clone())
        .await?
        .with_sender_tag_key(sender_tag_key(kek, &lease.channel));
    if secret.inbox_id.as_deref() != Some(client.inbox_id()) {
        store
            .pipeline()
            .set_channel_identity(
                &lease.channel,
                client.inbox_id(),
                &hex::encode(client.installation_id()),
            )
            .await?;
        tracing::info!(channel.id = %lease.channel, xmtp.inbox_id = client.inbox_id(), "channel registered on XMTP");
    }
    Ok((client, state))
}

/// The channel's registration state and its wallet, opened from the sealed key.
pub async fn channel_wallet(
    store: &Arc<dyn Store>,
    kek: &MasterKey,
    channel: &ChannelId,
) -> Result<(ChannelSecret, Wallet), ChannelXmtpError> {
    let secret = store
        .pipeline()
        .channel_secret(channel)
        .await?
        .filter(|s| !s.deleted)
        .ok_or(ChannelXmtpError::Gone)?;
    let key = ChannelWallet::open(kek, &secret.wallet_key_sealed, channel.as_str())
        .map_err(|_| ChannelXmtpError::Sealed)?;
    let bytes: [u8; 32] = key.to_bytes().into();
    let wallet = Wallet::from_bytes(&bytes).map_err(|_| ChannelXmtpError::Sealed)?;
    Ok((secret, wallet))
}

/// The key of the channel's sender tags (`sender_hmac` of what it publishes): the inbound
/// watcher recognises the channel's own messages on its DM streams with it.
pub fn sender_tag_key(kek: &MasterKey, channel: &ChannelId) -> [u8; 32] {
    kek.derive(&format!("herald/sender-tag/v1/{channel}"))
}

/// Registers a just-created channel right away (so its API answer shows the identity). On any
/// failure the channel stays unregistered and a delivery worker registers it later.
pub async fn register_now(
    store: &Arc<dyn Store>,
    kek: &Arc<MasterKey>,
    xmtp: &Xmtp,
    channel: &ChannelId,
) -> Result<(), ChannelXmtpError> {
    let now = Utc::now();
    let owner = format!("api-{}", ulid::Ulid::new());
    let until = now + chrono::Duration::seconds(xmtp.config.lease_secs as i64);
    let lease = store
        .pipeline()
        .acquire_sender(channel, &owner, until, now)
        .await?
        .ok_or(ChannelXmtpError::Busy)?;
    let result = open_client(store, kek, xmtp, &lease).await.map(|_| ());
    let error = result.as_ref().err().map(ToString::to_string);
    store
        .pipeline()
        .release_sender(&lease, error.as_deref(), None)
        .await?;
    result
}
