//! The inbound side of a leased channel: its inbox read with the drain's own client, so chat
//! replies and announcements share one MLS writer per channel identity.

use std::collections::HashSet;

use chrono::Utc;
use xmtp_client::Client;

use super::Worker;
use crate::inbound::run_pass;
use crate::store::pipeline::SenderLease;
use crate::store::InboundPlan;
use crate::xmtp::channel::ChannelXmtpError;

impl Worker {
    /// Reads the channel's inbox and answers commands if a pass is due: every DM when the
    /// periodic fallback is due, else only the DMs streams saw arrivals in. Returns messages
    /// handled plus DMs joined.
    pub(super) async fn read_inbox(
        &self,
        lease: &SenderLease,
        client: &Client,
    ) -> Result<u64, ChannelXmtpError> {
        let store = &*self.store;
        let started = Utc::now();
        let only = match store.inbound_plan(&lease.channel, started).await? {
            InboundPlan::Nothing => return Ok(0),
            InboundPlan::All => None,
            InboundPlan::Peers(peers) => Some(peers),
        };
        let (channel, welcome) = (&lease.channel, &self.welcome);
        let done = run_pass(store, channel, client, welcome, only.as_deref()).await?;
        self.record_groups(lease, client).await?;
        let every = chrono::Duration::seconds(self.xmtp.config.inbound_poll_secs.max(1) as i64);
        store
            .finish_inbound_check(&lease.channel, started, started + every)
            .await?;
        metrics::counter!("herald_inbound_messages_total").increment(done.handled as u64);
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
        Ok(self.store.set_peer_groups(&lease.channel, &groups).await?)
    }
}
