//! Rotating a channel's XMTP installation: a new installation key for the same inbox joins
//! every DM, becomes the channel's stored client, and every other installation of the inbox is
//! revoked, all while holding the channel's sender lease, so no worker sends with the old
//! installation meanwhile (its state writes are fenced by the lease).
//!
//! Steps, each safe to crash after (a re-run finishes the job):
//! 1. a new client for the channel's wallet registers a new installation (wallet-signed
//!    `AddAssociation`), its state kept in memory;
//! 2. the current installation adds it to every DM (one commit + welcome per DM), as libxmtp
//!    requires of a membership change implied by the identity log;
//! 3. the new installation processes the welcomes, and its whole state replaces the old one in
//!    the database in one fenced write (before this, a crash leaves the old installation in
//!    charge and the new one unused; the next rotation revokes it);
//! 4. every other installation of the inbox is revoked (recovery-wallet-signed
//!    `RevokeAssociation`), and the new installation removes their leaves from every DM.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use xmtp_client::{Client, MemoryStore, Store as _};

use super::channel::{channel_wallet, open_client, sender_tag_key, ChannelXmtpError};
use super::Xmtp;
use crate::crypto::MasterKey;
use crate::domain::ChannelId;
use crate::store::pipeline::SenderLease;
use crate::store::Store;

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub inbox_id: String,
    /// The channel's installation now (hex).
    pub installation_id: String,
    /// The installation the channel used before (hex).
    pub previous_installation_id: String,
    /// Installations revoked from the inbox (hex): the previous one, plus any left over by an
    /// interrupted earlier rotation.
    pub revoked: Vec<String>,
    /// DMs the new installation is a member of.
    pub dms: usize,
}

/// Rotates `channel`'s installation under its sender lease. [`ChannelXmtpError::Busy`] when a
/// worker holds the channel right now (retry shortly).
pub async fn rotate_installation(
    store: &Arc<dyn Store>,
    kek: &Arc<MasterKey>,
    xmtp: &Xmtp,
    channel: &ChannelId,
) -> Result<Rotated, ChannelXmtpError> {
    let now = Utc::now();
    let owner = format!("rotate-{}", ulid::Ulid::new());
    let lease = store
        .pipeline()
        .acquire_sender(channel, &owner, lease_until(xmtp), now)
        .await?
        .ok_or(ChannelXmtpError::Busy)?;
    // A channel with many DMs takes longer than one lease period: keep it renewed meanwhile.
    let renewer = tokio::spawn(keep_renewed(store.clone(), lease.clone(), lease_secs(xmtp)));
    let result = rotate_under(store, kek, xmtp, &lease).await;
    renewer.abort();
    if let Err(e) = &result {
        tracing::warn!(channel.id = %channel, error = %e, "installation rotation failed");
    }
    store.pipeline().release_sender(&lease, None, None).await?;
    result
}

fn lease_secs(xmtp: &Xmtp) -> u64 {
    xmtp.config.lease_secs.max(3)
}

fn lease_until(xmtp: &Xmtp) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(lease_secs(xmtp) as i64)
}

/// Renews `lease` every third of its period until aborted or lost. Once lost, the rotation's
/// fenced state writes fail, so it stops without forking the channel's state.
async fn keep_renewed(store: Arc<dyn Store>, lease: SenderLease, secs: u64) {
    let every = std::time::Duration::from_secs(secs / 3);
    loop {
        tokio::time::sleep(every).await;
        let until = Utc::now() + chrono::Duration::seconds(secs as i64);
        match store.pipeline().renew_sender(&lease, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(channel.id = %lease.channel, "sender lease lost during installation rotation");
                return;
            }
            Err(e) => {
                tracing::warn!(channel.id = %lease.channel, error = %e, "renewing the sender lease failed")
            }
        }
    }
}

async fn rotate_under(
    store: &Arc<dyn Store>,
    kek: &Arc<MasterKey>,
    xmtp: &Xmtp,
    lease: &SenderLease,
) -> Result<Rotated, ChannelXmtpError> {
    let channel = &lease.channel;
    let (old, state) = open_client(store, kek, xmtp, lease).await?;
    let (_, wallet) = channel_wallet(store, kek, channel).await?;
    let previous = hex::encode(old.installation_id());

    // 1. The new installation, registered, with its state in memory for now.
    let staging = MemoryStore::new();
    let new = Client::open(&wallet, xmtp.transport.clone(), Arc::new(staging.clone()))
        .await?
        .with_sender_tag_key(sender_tag_key(kek, channel));
    let installation = hex::encode(new.installation_id());

    // 2. The old installation adds it to every DM; 3. it joins them.
    old.refresh_memberships().await?;
    new.sync_welcomes().await?;
    let dms = new.dm_group_ids().await.len();
    drop(new);
    drop(old);

    // 3. Its state replaces the old installation's in one fenced write.
    let entries = staging.scan_prefix(&[]).await.map_err(client_store)?;
    let fresh: HashSet<&Vec<u8>> = entries.iter().map(|(k, _)| k).collect();
    let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = store
        .pipeline()
        .state_scan(channel, &[])
        .await?
        .into_iter()
        .filter(|(k, _)| !fresh.contains(k))
        .map(|(k, _)| (k, None))
        .collect();
    batch.extend(entries.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
    state.write_batch(&batch).await.map_err(client_store)?;
    let client_inbox = wallet_inbox(store, channel).await?;
    store
        .pipeline()
        .set_channel_identity(channel, &client_inbox, &installation)
        .await?;
    tracing::info!(channel.id = %channel, xmtp.installation_id = %installation, previous = %previous, dms, "channel installation replaced");

    // 4. Every other installation of the inbox is revoked; the new one drops their leaves.
    let (current, _) = open_client(store, kek, xmtp, lease).await?;
    let others: Vec<Vec<u8>> = current
        .own_installations()
        .await?
        .into_iter()
        .filter(|i| i[..] != current.installation_id())
        .collect();
    let revoked = current.revoke_installations(&wallet, &others).await?;
    current.refresh_memberships().await?;
    let revoked: Vec<String> = revoked.iter().map(hex::encode).collect();
    tracing::info!(channel.id = %channel, revoked = ?revoked, "old installations revoked");
    Ok(Rotated {
        inbox_id: current.inbox_id().to_owned(),
        installation_id: installation,
        previous_installation_id: previous,
        revoked,
        dms,
    })
}

/// The inbox id recorded for the channel (set at registration, unchanged by a rotation).
async fn wallet_inbox(
    store: &Arc<dyn Store>,
    channel: &ChannelId,
) -> Result<String, ChannelXmtpError> {
    store
        .pipeline()
        .channel_secret(channel)
        .await?
        .and_then(|s| s.inbox_id)
        .ok_or(ChannelXmtpError::Gone)
}

fn client_store(e: xmtp_client::storage::StoreError) -> ChannelXmtpError {
    ChannelXmtpError::Client(e.into())
}
