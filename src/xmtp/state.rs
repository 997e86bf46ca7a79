//! [`ChannelState`]: the XMTP client's key/value [`Store`] on herald's database
//! (`channel_state`), one namespace per channel.
//!
//! Every value is sealed under the master key (XChaCha20-Poly1305) with the channel id and the
//! key as associated data, so the installation key and MLS secrets are never stored in clear
//! and a value cannot be moved to another key or channel. Writes are fenced by the sender
//! lease: once another worker holds the channel, this handle's writes fail and nothing forks.
//! A handle kept open between leases ([`ChannelState::adopt`]) writes under the newest one.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use xmtp_client::storage::StoreError;
use xmtp_client::Store;

use crate::crypto::MasterKey;
use crate::store::pipeline::SenderLease;
use crate::store::Store as HeraldStore;

/// The associated data a state value is sealed with: its channel and key.
pub fn state_context(channel: &str, key: &[u8]) -> String {
    // `hex::encode` builds its string a char at a time; a state write seals one value per
    // message sent, so the table-driven slice encoder is used instead (same text).
    let mut out = vec![0u8; channel.len() + 1 + key.len() * 2];
    out[..channel.len()].copy_from_slice(channel.as_bytes());
    out[channel.len()] = b'/';
    hex::encode_to_slice(key, &mut out[channel.len() + 1..]).expect("sized for the key");
    String::from_utf8(out).expect("channel ids and hex digits are UTF-8")
}

/// Why a state write was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another worker took the channel's sender lease. Not retryable under this lease.
    #[error("the channel's sender lease was lost")]
    LeaseLost,
    /// A stored value did not open with the master key.
    #[error("channel state does not open with the master key")]
    Sealed,
}

/// One channel's client state, written under a held lease.
pub struct ChannelState {
    store: Arc<dyn HeraldStore>,
    kek: Arc<MasterKey>,
    channel: crate::domain::ChannelId,
    /// The lease writes are fenced by, and whether one succeeded under it.
    lease: RwLock<(SenderLease, bool)>,
}

impl ChannelState {
    pub fn new(store: Arc<dyn HeraldStore>, kek: Arc<MasterKey>, lease: SenderLease) -> Self {
        Self {
            store,
            kek,
            channel: lease.channel.clone(),
            lease: RwLock::new((lease, false)),
        }
    }

    /// Moves this handle to a newer lease of the same channel (a client kept open between
    /// leases). Only call it when the lease's `state_token` shows nobody wrote meanwhile.
    pub fn adopt(&self, lease: SenderLease) {
        assert_eq!(
            lease.channel, self.channel,
            "a state handle serves one channel"
        );
        *self.lease.write().expect("poisoned") = (lease, false);
    }

    /// The channel's `state_token` as this handle knows it: the current lease's token once a
    /// write succeeded under it, otherwise what the lease found when it was taken.
    pub fn state_token(&self) -> Option<i64> {
        let (lease, wrote) = &*self.lease.read().expect("poisoned");
        if *wrote {
            Some(lease.token)
        } else {
            lease.state_token
        }
    }

    fn context(&self, key: &[u8]) -> String {
        state_context(self.channel.as_str(), key)
    }

    fn open(&self, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.kek
            .open(sealed, &self.context(key))
            .map_err(|_| StoreError::Backend(Box::new(StateError::Sealed)))
    }
}

/// Stored (key, value) entries.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

impl ChannelState {
    fn open_rows(&self, rows: Entries) -> Result<Entries, StoreError> {
        rows.into_iter()
            .map(|(k, v)| {
                let v = self.open(&k, &v)?;
                Ok((k, v))
            })
            .collect()
    }
}

fn backend(e: crate::store::StoreError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

#[async_trait]
impl Store for ChannelState {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = self
            .store
            .pipeline()
            .state_get(&self.channel, key)
            .await
            .map_err(backend)?;
        sealed.map(|s| self.open(key, &s)).transpose()
    }

    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let rows = self
            .store
            .pipeline()
            .state_scan(&self.channel, prefix)
            .await
            .map_err(backend)?;
        self.open_rows(rows)
    }

    async fn scan_prefixes(
        &self,
        prefixes: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let rows = self
            .store
            .pipeline()
            .state_scan_many(&self.channel, prefixes)
            .await
            .map_err(backend)?;
        self.open_rows(rows)
    }

    async fn write_batch(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let sealed = batch
            .iter()
            .map(|(k, v)| {
                let v = v.as_ref().map(|v| self.kek.seal(v, &self.context(k)));
                (k.clone(), v)
            })
            .collect();
        let lease = self.lease.read().expect("poisoned").0.clone();
        let written = self
            .store
            .pipeline()
            .state_write(&lease, sealed)
            .await
            .map_err(backend)?;
        if written {
            let mut current = self.lease.write().expect("poisoned");
            if current.0 == lease {
                current.1 = true;
            }
            Ok(())
        } else {
            Err(StoreError::Backend(Box::new(StateError::LeaseLost)))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_context_is_channel_slash_hex_key() {
        let key = b"mls/g/\x00\xff/message_secrets";
        assert_eq!(
            super::state_context("ch_1", key),
            format!("ch_1/{}", hex::encode(key))
        );
        assert_eq!(super::state_context("ch_1", b""), "ch_1/");
    }
}
