//! Channel clients kept open between drains, so a channel's next announcement finds its DM
//! groups resident instead of reloading and decoding every group's MLS state.
//!
//! A kept client is only a cache of the database: it is reused only when the new lease shows
//! that the channel's state was last written under the lease this process held when it kept
//! the client (`state_token`), i.e. no other replica or worker wrote in between. Otherwise it
//! is dropped and the client is opened from the database as usual. Memory is bounded by
//! [`ClientCache::resident_limit`] DM groups across all kept clients.

use std::sync::{Arc, Mutex};

use xmtp_client::Client;

use crate::domain::ChannelId;
use crate::store::pipeline::SenderLease;
use crate::xmtp::state::ChannelState;

/// A client and its state handle.
pub struct OpenClient {
    /// Shared with the task that prepares a drain's next batch.
    pub client: Arc<Client>,
    pub state: Arc<ChannelState>,
    /// What drains of this channel looked up (announcement texts, chat peers).
    pub cache: super::prepare::DrainCache,
}

struct Kept {
    channel: ChannelId,
    open: OpenClient,
    /// The channel's `state_token` when the client was kept.
    state_token: Option<i64>,
    resident: usize,
}

/// Kept clients, most recently used last.
pub struct ClientCache {
    kept: Mutex<Vec<Kept>>,
    capacity: usize,
    resident_limit: usize,
}

impl ClientCache {
    /// At most `capacity` clients holding at most `resident_limit` DM groups in total.
    pub fn new(capacity: usize, resident_limit: usize) -> Self {
        Self {
            kept: Mutex::default(),
            capacity,
            resident_limit,
        }
    }

    /// Groups a drain may hold before it releases them (and the bound across kept clients).
    pub fn resident_limit(&self) -> usize {
        self.resident_limit
    }

    /// The kept client of `lease`'s channel, moved to `lease`, if nobody wrote the channel's
    /// state since it was kept. A stale one is dropped.
    pub fn take(&self, lease: &SenderLease) -> Option<OpenClient> {
        let mut kept = self.kept.lock().expect("poisoned");
        let at = kept.iter().position(|k| k.channel == lease.channel)?;
        let k = kept.remove(at);
        if k.state_token != lease.state_token {
            tracing::debug!(channel.id = %lease.channel, "kept client is stale: reopening");
            return None;
        }
        k.open.state.adopt(lease.clone());
        Some(k.open)
    }

    /// Keeps a client whose drain ended normally. Call it while the lease is still held: a
    /// client over the resident limit first releases its groups (flushing its state).
    pub async fn keep(&self, channel: ChannelId, open: OpenClient) {
        if self.capacity == 0 {
            return;
        }
        let mut resident = open.client.resident_groups().await;
        if resident > self.resident_limit {
            if open.client.release_groups().await.is_err() {
                return;
            }
            resident = 0;
        }
        let state_token = open.state.state_token();
        let mut kept = self.kept.lock().expect("poisoned");
        kept.retain(|k| k.channel != channel);
        kept.push(Kept {
            channel,
            open,
            state_token,
            resident,
        });
        // Evict least recently used clients beyond the bounds (never the one just kept).
        while kept.len() > 1
            && (kept.len() > self.capacity
                || kept.iter().map(|k| k.resident).sum::<usize>() > self.resident_limit)
        {
            kept.remove(0);
        }
    }
}
