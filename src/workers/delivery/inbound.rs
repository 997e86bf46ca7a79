//! The inbound side of a leased channel: its inbox read with the drain's own client, so chat
//! replies and announcements share one MLS writer per channel identity.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::ChannelId;
use xmtp_client::Client;

use super::Worker;
use crate::inbound::run_pass;
use crate::store::pipeline::SenderLease;
use crate::store::InboundPlan;
use crate::xmtp::channel::ChannelXmtpError;

impl Worker {
    /// Reads the channel's inbox and answers commands as `plan` says (computed at `started`):
    /// every DM when the periodic fallback is due, else only the DMs streams saw arrivals in. Returns messages
    /// handled plus DMs joined.
    pub(super) async fn read_inbox(
        &self,
        lease: &SenderLease,
        client: &Client,
        plan: InboundPlan,
        started: DateTime<Utc>,
    ) -> Result<u64, ChannelXmtpError> {
        let store = &*self.store;
        let only = match plan {
            InboundPlan::Nothing => return Ok(0),
            InboundPlan::All => None,
            InboundPlan::Peers(peers) => Some(peers),
        };
        let (channel, welcome) = (&lease.channel, &self.welcome);
        let t0 = std::time::Instant::now();
        let peers = only.as_ref().map(Vec::len);
        let limits = &*self.chat_limits;
        let done = run_pass(store, channel, client, welcome, only.as_deref(), limits).await?;
        let t_pass = t0.elapsed();
        self.record_groups(lease, client).await?;
        tracing::debug!(target: "herald::timing", ?peers, ?t_pass, total = ?t0.elapsed(), "inbound pass");
        let every = chrono::Duration::seconds(self.xmtp.config.inbound_poll_secs.max(1) as i64);
        store
            .finish_inbound_check(&lease.channel, started, started + every)
            .await?;
        metrics::counter!("herald_inbound_messages_total").increment(done.handled as u64);
        if done.limited > 0 {
            tracing::info!(channel.id = %lease.channel, limited = done.limited, "chat commands over their sender's limit dropped");
        }
        if done.handled > 0 {
            tracing::debug!(channel.id = %lease.channel, handled = done.handled, joined = done.joined, "chat commands answered");
        }
        Ok((done.handled + done.joined) as u64)
    }

    /// Records the DM group of peers that have none on file yet, so the inbound watcher
    /// streams them (a STOP sent in reply to an announcement is then seen at once).
    pub(super) async fn record_groups(
        &self,
        lease: &SenderLease,
        client: &Client,
    ) -> Result<(), ChannelXmtpError> {
        let t0 = std::time::Instant::now();
        let missing: HashSet<String> = self
            .store
            .peers_without_group(&lease.channel)
            .await?
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let groups: Vec<(String, String)> = client
            .dm_group_ids()
            .await
            .into_iter()
            .filter(|(peer, _)| missing.contains(peer) && seen.insert(peer.clone()))
            .map(|(peer, group)| (peer, hex::encode(group)))
            .collect();
        self.store.set_peer_groups(&lease.channel, &groups).await?;
        tracing::debug!(target: "herald::timing", n = groups.len(), took = ?t0.elapsed(), "record_groups");
        Ok(())
    }
}

/// How long new deliveries may keep putting off a channel's full inbox read (the periodic
/// fallback behind the streams, every `inbound_poll_secs`, 300 s by default).
const FULL_PASS_DEFER_MAX: Duration = Duration::from_secs(60);

/// Inbound passes that yielded to new deliveries, per channel, since when. A pass reading only
/// the DMs streams saw arrivals in (a STOP, say) yields once, then runs to its end; the full
/// read of every DM (seconds for a large channel) yields to sending for up to
/// [`FULL_PASS_DEFER_MAX`]. So a burst of announcements goes out back to back, and chat is
/// never starved.
#[derive(Default)]
pub(super) struct Deferrals(
    std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
);

impl Deferrals {
    pub(super) fn may_yield(&self, channel: &ChannelId, full: bool) -> bool {
        match self.0.lock().expect("poisoned").get(channel.as_str()) {
            None => true,
            Some(since) => full && since.elapsed() < FULL_PASS_DEFER_MAX,
        }
    }

    pub(super) fn yielded(&self, channel: &ChannelId) {
        self.0
            .lock()
            .expect("poisoned")
            .entry(channel.as_str().to_owned())
            .or_insert_with(std::time::Instant::now);
    }

    pub(super) fn done(&self, channel: &ChannelId) {
        self.0.lock().expect("poisoned").remove(channel.as_str());
    }
}
