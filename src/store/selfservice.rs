//! Subscriber self-service persistence: SIWE nonces, the consent log, topics and topic
//! preferences, the send-time deliverability check, and inbound chat bookkeeping.
//!
//! Separate traits (`SelfServiceStore`, with `TopicStore` and `InboundStore` under it, all
//! supertraits of [`Store`](super::Store)) keep this surface apart from the foundation's. Both
//! backends implement them from one SQL text each (`selfservice_sql.rs`, `topics_sql.rs`,
//! `inbound_sql.rs`), because every statement here is portable between Postgres and SQLite.
//!
//! This file holds the consent log and SIWE nonces; topics are in `selfservice/topics.rs`, chat
//! bookkeeping in `selfservice/inbound.rs`.

mod inbound;
mod topics;

pub use inbound::{InboundPlan, InboundStore, InboundTopics};
pub(super) use topics::{topic_filter, TopicRow};
pub use topics::{PreferenceOutcome, Topic, TopicMode, TopicPreference, TopicStore};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StoreResult, SubscribeOutcome};
use crate::domain::{Address, ChannelId, TenantId};

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
    /// A signature (hex) with its signed message, the XMTP message id with its sender, a
    /// request id, …
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
    /// The exact text issued; a subscribe must present it byte for byte.
    pub message: String,
}

/// An issued challenge that is neither used nor expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutstandingNonce {
    pub nonce: String,
    pub message: String,
    pub expires_at: DateTime<Utc>,
}

/// Result of trying to use a nonce once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceUse {
    /// It was unused and is now spent; carries what it was issued for.
    Consumed {
        channel: ChannelId,
        address: Address,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        /// The issued text; `None` for challenges issued before texts were stored (the caller
        /// rebuilds and compares it).
        message: Option<String>,
    },
    /// It is unused, but was issued with another text: not spent.
    Mismatch,
    /// It was already used.
    Replayed,
    /// Never issued.
    Unknown,
}

#[async_trait]
pub trait SelfServiceStore: TopicStore + InboundStore + Send + Sync {
    /// The tenant of a channel that exists and is not deleted (public endpoints: no tenant
    /// scope; the tenant is needed for its quotas).
    async fn live_channel_tenant(&self, channel: &ChannelId) -> StoreResult<Option<TenantId>>;
    /// Marks a nonce used in one atomic statement, so two concurrent uses cannot both win; a
    /// nonce whose stored text differs from `message` is left unused ([`NonceUse::Mismatch`]).
    async fn use_nonce(
        &self,
        nonce: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<NonceUse>;
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
