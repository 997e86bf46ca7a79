//! Persistence behind the [`Store`] trait, with a Postgres backend (production) and a SQLite
//! backend (embedded default). Handlers hold an `Arc<dyn Store>` and never see which one runs.
//!
//! SQL is checked at runtime (`sqlx::query_as::<_, Row>`), not with `query!` macros, because one
//! build serves two backends. Tenant scoping happens here: every read of a tenant-owned object
//! takes the tenant id and returns `None` for another tenant's object, so the HTTP layer cannot
//! forget the check.

mod access;
mod access_sql;
mod announcements_sql;
mod chain;
mod chain_batch_sql;
mod chain_sql;
mod channel_state_sql;
mod idempotency_sql;
mod inbound_sql;
pub mod pipeline;
mod postgres;
mod sealed;
mod selfservice;
mod selfservice_sql;
mod sqlite;
mod store_sql;
mod subscribers_sql;
mod topics_sql;
mod types;
mod write_tx;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::domain::{Address, AnnouncementId, ApiKeyId, ChannelId, TenantId};

pub use access::{AccessStore, ApiKey, KeyOwner, KeyRevoke, NewApiKey};
pub use chain::{ChainLease, LeaseLost, NewTrigger, Trigger, TriggerPatch, TriggerStore};
pub use pipeline::PipelineStore;
pub use postgres::PgStore;
pub use sealed::{Sealed, SealedAt, SealedStore};
pub use selfservice::*;
pub use sqlite::SqliteStore;
pub use types::*;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or a query failed. Retryable: connection drops and
    /// serialization failures are transient.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed. Not retryable: the schema needs attention.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a backend herald does not have. Not retryable.
    #[error("unsupported database URL scheme `{0}` (use sqlite:// or postgres://)")]
    UnsupportedScheme(String),
    /// Preparing the SQLite data folder failed. Not retryable.
    #[error("cannot create the database folder")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything herald persists. Methods taking a `tenant` only ever see that tenant's rows.
#[async_trait]
pub trait Store: SelfServiceStore + AccessStore + SealedStore + Send + Sync + 'static {
    /// Triggers, chain watcher leases and the chain engine's store (see [`TriggerStore`]).
    fn triggers(&self) -> &dyn TriggerStore;
    /// The delivery pipeline's side of the same database.
    fn pipeline(&self) -> &dyn PipelineStore;
    /// Runs a trivial query; backs the readiness probe.
    async fn ping(&self) -> StoreResult<()>;
    /// Background upkeep of the write-ahead log, called every few hundred milliseconds by a
    /// serving process: on SQLite a passive checkpoint (copies committed pages back into the
    /// database file without blocking writers), so commits on the send path do not pay for it;
    /// nothing on Postgres.
    async fn checkpoint(&self) -> StoreResult<()>;
    /// Deliveries still waiting to be sent, across all tenants: the pipeline's queue depth.
    /// Served by the partial index on pending rows.
    async fn pending_deliveries(&self) -> StoreResult<i64>;

    /// Reads a named setting (e.g. the admin token hash).
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Stores a setting unless it already exists; returns whether this call stored it.
    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool>;

    /// Creates a tenant with its first API key (given as a hash).
    async fn create_tenant(&self, tenant: &NewTenant) -> StoreResult<Tenant>;
    /// Resolves an API key hash to its tenant; revoked keys resolve to nothing.
    async fn tenant_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<TenantId>>;

    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel>;
    async fn list_channels(&self, tenant: &TenantId, page: &Page) -> StoreResult<Vec<Channel>>;
    async fn get_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<Option<Channel>>;
    async fn update_channel(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        patch: &ChannelPatch,
    ) -> StoreResult<Option<Channel>>;
    /// Soft-deletes a channel and skips its still-pending deliveries; returns false if absent.
    async fn delete_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<bool>;

    /// The sealed wallet key of a live channel, for workers acting as that channel (not tenant
    /// scoped: never reachable from a request).
    async fn channel_wallet_sealed(&self, id: &ChannelId) -> StoreResult<Option<Vec<u8>>>;
    /// Records the XMTP identity the channel registered on the network.
    async fn set_channel_xmtp_identity(
        &self,
        id: &ChannelId,
        inbox_id: &str,
        installation_id: &str,
    ) -> StoreResult<()>;
    /// Reads one opaque XMTP client state value of a channel.
    async fn channel_state_get(
        &self,
        channel: &ChannelId,
        key: &[u8],
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Writes (inserts or replaces) one opaque XMTP client state value of a channel.
    async fn channel_state_put(
        &self,
        channel: &ChannelId,
        key: &[u8],
        value: &[u8],
    ) -> StoreResult<()>;
    /// Deletes one XMTP client state value; deleting a missing key is not an error.
    async fn channel_state_delete(&self, channel: &ChannelId, key: &[u8]) -> StoreResult<()>;

    /// Subscribes (or re-subscribes) one address.
    async fn subscribe(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<SubscribeOutcome>;
    /// Subscribes many addresses (deduplicated by the caller) in one statement.
    async fn subscribe_many(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<BatchOutcome>;
    /// Marks an active subscriber unsubscribed; returns false if there was none.
    async fn unsubscribe(&self, channel: &ChannelId, address: &Address) -> StoreResult<bool>;
    /// Active subscribers ordered by address, after `page.cursor`.
    async fn list_subscribers(
        &self,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Vec<Subscriber>>;

    /// Creates an announcement and all its delivery rows atomically (rows are produced by
    /// `INSERT … SELECT`, never loaded into memory). Returns `None`, creating nothing, when the
    /// channel is missing, deleted or another tenant's: the ownership check is part of the same
    /// statement or transaction, which saves the hot path a round trip. When `idempotency` is
    /// given, its record is completed in the same transaction, so a replay can never see a
    /// half-made announcement.
    async fn create_announcement(
        &self,
        announcement: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Option<Announcement>>;
    async fn get_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<Option<Announcement>>;
    /// Deliveries of one announcement ordered by address; `None` if the announcement is not the
    /// tenant's.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
        status: Option<DeliveryStatus>,
        page: &Page,
    ) -> StoreResult<Option<Vec<Delivery>>>;

    /// Starts (or replays, or refuses) an idempotent request. See [`IdempotencyBegin`].
    async fn begin_idempotent(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> StoreResult<IdempotencyBegin>;
    /// Forgets an in-flight key whose request failed, so the client may retry with it.
    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()>;
    /// Deletes up to `limit` idempotency records created before `before`; returns how many.
    async fn purge_idempotency_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<u64>;
}

/// Opens the backend the URL names, creating the SQLite file and folder if needed, and applies
/// that backend's migrations.
pub async fn connect(config: &Config) -> StoreResult<Arc<dyn Store>> {
    let url = config.database_url.expose();
    match config.database_url.scheme() {
        "sqlite" => Ok(Arc::new(
            SqliteStore::connect(url, config.db_max_connections).await?,
        )),
        "postgres" | "postgresql" => Ok(Arc::new(
            PgStore::connect(url, config.db_max_connections).await?,
        )),
        other => Err(StoreError::UnsupportedScheme(other.to_owned())),
    }
}
