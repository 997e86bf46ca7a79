//! Inbound chat bookkeeping: the welcome text, known peers and their DM groups, handled
//! messages, and when each channel's inbox is due to be read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Address, ChannelId};
use crate::store::StoreResult;

/// Chat bookkeeping: welcome text, known peers, handled messages.
#[async_trait]
pub trait InboundStore: Send + Sync {
    /// The channel's welcome text for first chat contacts, if the tenant set one.
    async fn welcome_text(&self, channel: &ChannelId) -> StoreResult<Option<String>>;
    /// Sets (or clears) the welcome text; false if the channel does not exist.
    async fn set_welcome_text(&self, channel: &ChannelId, text: Option<&str>) -> StoreResult<bool>;
    /// Chat peers the channel knows: (inbox id, verified address).
    async fn inbound_peers(&self, channel: &ChannelId) -> StoreResult<Vec<(String, Address)>>;
    /// Remembers a peer; true if it is new (a first contact).
    async fn add_inbound_peer(
        &self,
        channel: &ChannelId,
        inbox_id: &str,
        address: &Address,
    ) -> StoreResult<bool>;
    /// Claims an inbound message for handling; false if it was handled before.
    async fn claim_inbound_message(
        &self,
        channel: &ChannelId,
        message_id: &str,
    ) -> StoreResult<bool>;
    /// Remembers many peers at once (recipients the delivery worker resolved); returns how
    /// many were new. Known peers never get the welcome text.
    async fn add_inbound_peers(
        &self,
        channel: &ChannelId,
        peers: &[(String, Address)],
    ) -> StoreResult<u64>;
    /// Known peers whose DM group is not recorded yet.
    async fn peers_without_group(&self, channel: &ChannelId) -> StoreResult<Vec<String>>;
    /// Records (peer inbox id, DM group id in hex) pairs.
    async fn set_peer_groups(
        &self,
        channel: &ChannelId,
        groups: &[(String, String)],
    ) -> StoreResult<()>;
    /// What the inbound watcher streams: every live registered channel's welcome topic and
    /// the recorded DM groups.
    async fn inbound_topics(&self) -> StoreResult<InboundTopics>;
    /// Registered live channels whose inbox should be read now: never read, the periodic
    /// fallback is due, or a stream saw something arrive since the last pass.
    async fn inbound_due_channels(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>>;
    /// What the next pass of this channel should read (see [`InboundPlan`]).
    async fn inbound_plan(
        &self,
        channel: &ChannelId,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundPlan>;
    /// Notes that streams saw arrivals in these DM groups (hex ids) at `now`.
    async fn mark_inbound_groups(
        &self,
        channel: &ChannelId,
        groups: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Records a pass that started at `started`; the next periodic one is due at `next_due`.
    /// A mark made after `started` keeps the channel due.
    async fn finish_inbound_check(
        &self,
        channel: &ChannelId,
        started: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Notes that something arrived for these channels (from a stream) at `now`.
    async fn mark_inbound(&self, channels: &[ChannelId], now: DateTime<Utc>) -> StoreResult<()>;
}

/// What an inbound pass reads. New welcomes are always read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundPlan {
    /// Not due.
    Nothing,
    /// Every known peer's DMs: the channel was never read or the periodic fallback is due.
    All,
    /// Only these peers' DMs: a stream saw arrivals in them since the last pass (or they are
    /// not followed by the streams yet).
    Peers(Vec<String>),
}

/// The topics the inbound watcher follows, each with its channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundTopics {
    /// (channel, installation id in hex): the channel's welcome topic.
    pub welcomes: Vec<(ChannelId, String)>,
    /// (channel, DM group id in hex).
    pub groups: Vec<(ChannelId, String)>,
}
