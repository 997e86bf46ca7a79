//! Subscriber self-service persistence: SIWE nonces, the consent log, topics and topic
//! preferences, the send-time deliverability check, and inbound chat bookkeeping.
//!
//! Separate traits (`SelfServiceStore`, with `TopicStore` and `InboundStore` under it, all
//! supertraits of [`Store`](super::Store)) keep this surface apart from the foundation's. Both
//! backends implement them from one SQL text each (`selfservice_sql.rs`, `topics_sql.rs`,
//! `inbound_sql.rs`), because every statement here is portable between Postgres and SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StoreResult, SubscribeOutcome};
use crate::domain::{Address, ChannelId};

/// Through which path a subscription change arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentSource {
    /// The tenant's REST API (one address).
    Api,
    /// A chat command the subscriber sent to the channel.
    Dm,
    /// A wallet-signed (SIWE) request from the subscriber.
    Signature,
    /// The tenant's batch import.
    Import,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Dm => "dm",
            Self::Signature => "signature",
            Self::Import => "import",
        }
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAction {
    Subscribe,
    Unsubscribe,
    TopicOn,
    TopicOff,
}

impl ConsentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::TopicOn => "topic_on",
            Self::TopicOff => "topic_off",
        }
    }
}

/// Source and evidence of a change, as recorded in the consent log.
#[derive(Debug, Clone)]
pub struct ConsentContext {
    pub source: ConsentSource,
    /// A signature (hex) with its signed message, an XMTP message id, a request id, …
    pub evidence: Option<String>,
}

/// One consent log entry as read back.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    pub id: String,
    pub address: Address,
    pub action: String,
    pub topic: Option<String>,
    pub source: String,
    pub evidence: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A SIWE challenge about to be stored.
#[derive(Debug, Clone)]
pub struct NewNonce {
    pub nonce: String,
    pub channel: ChannelId,
    pub address: Address,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Result of trying to use a nonce once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceUse {
    /// It was unused and is now spent; carries what it was issued for.
    Consumed {
        channel: ChannelId,
        address: Address,
        expires_at: DateTime<Utc>,
    },
    /// It was already used.
    Replayed,
    /// Never issued.
    Unknown,
}

/// Whether a topic's messages reach a subscriber who has not chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMode {
    /// Opted in unless they opt out.
    On,
    /// Opted out unless they opt in.
    Off,
    /// Always delivered to active subscribers; cannot be turned off.
    Required,
}

impl TopicMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Required => "required",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub description: Option<String>,
    pub default_mode: TopicMode,
    pub created_at: DateTime<Utc>,
}

/// A topic as one subscriber sees it.
#[derive(Debug, Clone)]
pub struct TopicPreference {
    pub topic: Topic,
    /// Whether the subscriber receives it now (explicit choice, else the default).
    pub enabled: bool,
    /// Whether that comes from an explicit choice.
    pub explicit: bool,
}

/// Outcome of a topic preference change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferenceOutcome {
    Set,
    /// The topic is `required`; it cannot be turned off.
    Required,
    UnknownTopic,
}

#[async_trait]
pub trait SelfServiceStore: TopicStore + InboundStore + Send + Sync {
    /// Whether the channel exists and is not deleted (public endpoints: no tenant scope).
    async fn channel_is_live(&self, channel: &ChannelId) -> StoreResult<bool>;
    /// Stores a fresh SIWE nonce.
    async fn create_nonce(&self, nonce: &NewNonce) -> StoreResult<()>;
    /// Marks a nonce used in one atomic statement, so two concurrent uses cannot both win.
    async fn use_nonce(&self, nonce: &str, now: DateTime<Utc>) -> StoreResult<NonceUse>;
    /// Deletes SIWE nonces that expired before `before` (used or not); returns how many. The
    /// challenge endpoint is public, so this keeps the table bounded.
    async fn purge_expired_nonces(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Subscribes (or re-activates) an address and logs the change in the same transaction;
    /// an already active address is left alone and not logged.
    async fn subscribe_with_consent(
        &self,
        channel: &ChannelId,
        address: &Address,
        context: &ConsentContext,
    ) -> StoreResult<SubscribeOutcome>;
    /// Unsubscribes an active address and logs it atomically; false (nothing logged) if it was
    /// not active.
    async fn unsubscribe_with_consent(
        &self,
        channel: &ChannelId,
        address: &Address,
        context: &ConsentContext,
    ) -> StoreResult<bool>;
    /// Subscribes many addresses (the batch import) and logs a `subscribe` entry, source
    /// `import`, for exactly those that were new or re-activated, in one transaction.
    async fn subscribe_many_with_consent(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
        context: &ConsentContext,
    ) -> StoreResult<super::BatchOutcome>;
    /// Logs an entry for each address.
    async fn log_consent_many(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
        action: ConsentAction,
        context: &ConsentContext,
    ) -> StoreResult<()>;
    /// One subscriber's consent history, oldest first.
    async fn consent_history(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Vec<ConsentRecord>>;
    /// The channel's log in id (time) order after `cursor`, at most `limit` entries.
    async fn consent_export(
        &self,
        channel: &ChannelId,
        cursor: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConsentRecord>>;
    /// `active`, `unsubscribed`, or `None` if the address was never subscribed.
    async fn subscriber_status(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Option<String>>;
}

/// Channel topics, subscribers' choices, and the send-time check.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Creates a topic; false if the name is taken.
    async fn create_topic(&self, channel: &ChannelId, topic: &Topic) -> StoreResult<bool>;
    async fn list_topics(&self, channel: &ChannelId) -> StoreResult<Vec<Topic>>;
    async fn get_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<Option<Topic>>;
    /// Replaces description and default; `None` if there is no such topic.
    async fn update_topic(
        &self,
        channel: &ChannelId,
        name: &str,
        description: Option<&str>,
        mode: TopicMode,
    ) -> StoreResult<Option<Topic>>;
    /// Deletes a topic and every preference for it; false if absent.
    async fn delete_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<bool>;
    /// Records an explicit topic choice and logs it (`topic_on`/`topic_off`) atomically.
    async fn set_topic_preference(
        &self,
        channel: &ChannelId,
        address: &Address,
        topic: &str,
        enabled: bool,
        context: &ConsentContext,
    ) -> StoreResult<PreferenceOutcome>;
    /// Every topic of the channel with this subscriber's effective choice.
    async fn topic_preferences(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Vec<TopicPreference>>;
    /// The send-time check: may a message (for `topic`, if any) go to `address` now? True only
    /// for an active subscriber who, for a topic, has it enabled (explicitly or by default, or
    /// it is `required`). A topic deleted since the announcement was made no longer filters.
    async fn is_deliverable(
        &self,
        channel: &ChannelId,
        address: &Address,
        topic: Option<&str>,
    ) -> StoreResult<bool>;
    /// The batched send-time check for one topic: which of `addresses` are active
    /// subscribers that receive `topic` (same rule as [`TopicStore::is_deliverable`]).
    async fn topic_receivers(
        &self,
        channel: &ChannelId,
        topic: &str,
        addresses: &[String],
    ) -> StoreResult<std::collections::HashSet<String>>;
    /// The topic an announcement targets, if any.
    async fn announcement_topic(&self, announcement: &str) -> StoreResult<Option<String>>;
}

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

/// Consent log row shape shared by both backends.
#[derive(sqlx::FromRow)]
pub(super) struct ConsentRow {
    id: String,
    address: String,
    action: String,
    topic: Option<String>,
    source: String,
    evidence: Option<String>,
    created_at: DateTime<Utc>,
}

impl ConsentRow {
    pub(super) fn into_record(self) -> ConsentRecord {
        ConsentRecord {
            id: self.id,
            address: Address::from_trusted(self.address),
            action: self.action,
            topic: self.topic,
            source: self.source,
            evidence: self.evidence,
            created_at: self.created_at,
        }
    }
}

/// Topic row shape shared by both backends.
#[derive(sqlx::FromRow)]
pub(super) struct TopicRow {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) default_mode: String,
    pub(super) created_at: DateTime<Utc>,
}

impl TopicRow {
    pub(super) fn into_topic(self) -> Topic {
        Topic {
            name: self.name,
            description: self.description,
            // The column's CHECK constraint admits only the three modes.
            default_mode: TopicMode::parse(&self.default_mode).unwrap_or(TopicMode::On),
            created_at: self.created_at,
        }
    }
}

/// SQL condition (for a `subscribers s` row) that the subscriber receives topic `param`
/// (a bind placeholder such as `$7`): the topic is `required`, or their explicit choice is on,
/// or they have none and the default is `on`. Used by the announcement fan-out.
pub(super) fn topic_filter(param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM topics t WHERE t.channel_id = s.channel_id AND t.name = {param} \
         AND (t.default_mode = 'required' OR COALESCE((SELECT p.enabled FROM topic_preferences p \
         WHERE p.channel_id = s.channel_id AND p.address = s.address AND p.topic = t.name), \
         t.default_mode = 'on')))"
    )
}
