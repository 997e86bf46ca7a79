//! Persistence behind the [`Store`] trait, with a Postgres backend (production) and a SQLite
//! backend (embedded default). Handlers hold an `Arc<dyn Store>` and never see which one runs.
//!
//! SQL is checked at runtime (`sqlx::query_as::<_, Row>`), not with `query!` macros, because one
//! build serves two backends. Tenant scoping happens here: every read of a tenant-owned object
//! takes the tenant id and returns `None` for another tenant's object, so the HTTP layer cannot
//! forget the check.

mod access;
mod access_sql;
mod announcements_cancel_sql;
mod announcements_idempotency_sql;
mod announcements_sql;
mod chain;
mod chain_batch_sql;
mod chain_retract_sql;
mod chain_sql;
mod connect_failure;
mod dialect;
mod idempotency_sql;
mod inbound_sql;
mod ops;
mod ops_sql;
pub mod pipeline;
mod pipeline_budget_sql;
mod pipeline_claim_sql;
mod pipeline_state_sql;
mod postgres;
mod rows;
mod sealed;
mod selfservice;
mod selfservice_sql;
mod settle_sql;
mod sqlite;
mod store_sql;
mod subscribers_sql;
mod topics_sql;
mod types;
mod watches;
mod watches_sql;
mod webhooks;
mod webhooks_capture_sql;
mod webhooks_queue_sql;
mod webhooks_sql;
mod write_tx;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::domain::{Address, AnnouncementId, ApiKeyId, ChannelId, TenantId};

pub use access::{AccessStore, ApiKey, IssuedNonce, KeyOwner, KeyRevoke, NewApiKey, NonceIssue};
pub use chain::{ChainLease, LeaseLost, NewTrigger, Trigger, TriggerPatch, TriggerStore};
pub use ops::{AnnouncementState, OpsStore, TenantSummary};
pub use pipeline::PipelineStore;
pub use postgres::PgStore;
pub(crate) use rows::*;
pub use sealed::{Sealed, SealedAt, SealedStore};
pub use selfservice::*;
pub use sqlite::SqliteStore;
pub use types::*;
pub use watches::{
    NewWatch, PageCommit, Watch, WatchChange, WatchPatch, WatchRecord, WatchStore, WatchTarget,
};
pub use webhooks::{
    CapturedEvent, ClaimedWebhook, EventSource, NewWebhookEndpoint, WebhookAttemptLog,
    WebhookEndpoint, WebhookEndpointPatch, WebhookSettle, WebhookStore,
};

/// Errors from the store. Database failures come in three classes, told apart once here
/// (see [`StoreError::from`]) so callers never look at sqlx: the database cannot serve now
/// ([`StoreError::Unavailable`]), a write broke a constraint ([`StoreError::Conflict`]), or
/// anything else ([`StoreError::Database`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot serve right now: connection trouble, an exhausted or closed pool,
    /// the server shutting down, a serialization failure or deadlock, SQLite's busy/locked
    /// file, a read-only, full or failing disk. Retryable; the HTTP layer answers 503.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A write broke a unique, foreign-key, not-null or check constraint: the request conflicts
    /// with stored data. Never retryable; the HTTP layer answers 409.
    #[error("database constraint violated")]
    Conflict(#[source] sqlx::Error),
    /// Any other database failure (a bad query, an undecodable row). Not retryable: the same
    /// call fails the same way.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed. Not retryable: the schema needs attention.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a backend herald does not have. Not retryable.
    #[error("unsupported database URL scheme `{0}` (use sqlite:// or postgres://)")]
    UnsupportedScheme(String),
    /// Preparing the SQLite data folder failed. Not retryable.
    #[error("cannot create the database folder")]
    Io(#[from] std::io::Error),
    /// The database server could not be reached at startup: `target` is where (host, port,
    /// database; never the password), `cause` why (refused, DNS, authentication, timeout). Not
    /// retryable by herald itself: the operator fixes the URL or the server.
    #[error("cannot connect to the database at {target}: {cause}")]
    Unreachable { target: String, cause: String },
}

impl StoreError {
    /// Whether retrying the same operation later may succeed: only when the database was
    /// unavailable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// The underlying database error of the three database classes.
    pub fn into_sqlx(self) -> Result<sqlx::Error, StoreError> {
        match self {
            StoreError::Unavailable(e) | StoreError::Conflict(e) | StoreError::Database(e) => Ok(e),
            other => Err(other),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if unavailable(&e) {
            StoreError::Unavailable(e)
        } else if e
            .as_database_error()
            .is_some_and(|db| !matches!(db.kind(), sqlx::error::ErrorKind::Other))
        {
            StoreError::Conflict(e)
        } else {
            StoreError::Database(e)
        }
    }
}

/// Whether a database error means "cannot serve now" rather than a failing query. Postgres:
/// SQLSTATE classes `08` (connection exception), `53` (insufficient resources), `57P`
/// (shutting down), `40001`/`40P01` (serialization failure, deadlock). SQLite: the primary
/// result codes BUSY, LOCKED, IOERR, READONLY, FULL and CANTOPEN (the low byte of the
/// extended code sqlx reports).
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                const BUSY: i64 = 5;
                const LOCKED: i64 = 6;
                const IOERR: i64 = 10;
                const FULL: i64 = 13;
                const CANTOPEN: i64 = 14;
                const READONLY: i64 = 8;
                code.parse::<i64>().is_ok_and(|c| {
                    matches!(c & 0xff, BUSY | LOCKED | IOERR | FULL | CANTOPEN | READONLY)
                })
            } else {
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything herald persists. Methods taking a `tenant` only ever see that tenant's rows.
#[async_trait]
pub trait Store:
    SelfServiceStore
    + AccessStore
    + SealedStore
    + OpsStore
    + WebhookStore
    + WatchStore
    + Send
    + Sync
    + 'static
{
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
    /// `INSERT … SELECT`, never loaded into memory). Creates nothing ([`Creation::NoChannel`])
    /// when the channel is missing, deleted or another tenant's: the ownership check is part of
    /// the same statement or transaction, which saves the hot path a round trip. When
    /// `idempotency` is given, its record is completed (or inserted, see
    /// [`IdempotencyCompletion::unclaimed_hash`]) in the same transaction, so a replay can never
    /// see a half-made announcement.
    async fn create_announcement(
        &self,
        announcement: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Creation>;
    async fn get_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<Option<Announcement>>;
    /// Ends the announcement's pending deliveries `skipped: cancelled` in one statement and
    /// marks it cancelled; see [`CancelOutcome`].
    async fn cancel_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<CancelOutcome>;
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
        "postgres" | "postgresql" => match PgStore::connect(url, config.db_max_connections).await {
            Ok(store) => Ok(Arc::new(store)),
            Err(err) => Err(connect_failure::explain(url, err).await),
        },
        other => Err(StoreError::UnsupportedScheme(other.to_owned())),
    }
}
