//! Tenant API keys (several per tenant, for rotation; revocable), the counts behind the
//! per-tenant quotas, and issuing / inspecting SIWE challenges under their caps.
//!
//! [`AccessStore`] is a supertrait of [`Store`](super::Store); its SQL is portable and written
//! once in `access_sql.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{NewNonce, OutstandingNonce, StoreResult};
use crate::domain::{Address, ApiKeyId, ChannelId, TenantId};

/// A key about to be stored (as the SHA-256 of its secret).
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub name: Option<String>,
    pub key_hash: String,
}

/// An active key as listed (never its secret or hash).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Who an active key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub tenant: TenantId,
    pub key: ApiKeyId,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Result of revoking a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRevoke {
    /// Revoked now; carries its hash so the caller can drop it from caches.
    Revoked { key_hash: String },
    /// It is the tenant's last active key and the caller asked to keep one.
    LastKey,
    /// No such active key for this tenant.
    NotFound,
}

/// A SIWE challenge as stored, read without spending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedNonce {
    pub channel: ChannelId,
    pub address: Address,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The issued text; `None` for challenges issued before texts were stored.
    pub message: Option<String>,
    pub used: bool,
}

/// Result of asking for a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceIssue {
    /// The new challenge was stored.
    Issued,
    /// The address already has an open challenge on the channel: hand that one out again.
    Existing(OutstandingNonce),
    /// The channel has its maximum of unanswered challenges.
    ChannelFull,
}

#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Resolves an active key's hash to its tenant and id.
    async fn api_key_owner(&self, key_hash: &str) -> StoreResult<Option<KeyOwner>>;
    /// Records that a key was used at `now`.
    async fn touch_api_key(&self, key: &ApiKeyId, now: DateTime<Utc>) -> StoreResult<()>;
    /// Whether the tenant exists.
    async fn tenant_exists(&self, tenant: &TenantId) -> StoreResult<bool>;
    /// Stores a key unless the tenant already has `max_active` active keys (0: no limit),
    /// checked in the same statement; `None` when the limit is reached.
    async fn create_api_key(&self, key: &NewApiKey, max_active: u32)
        -> StoreResult<Option<ApiKey>>;
    /// The tenant's active keys, oldest first.
    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>>;
    /// Revokes one of the tenant's active keys; with `keep_one`, never its last one.
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key: &ApiKeyId,
        keep_one: bool,
    ) -> StoreResult<KeyRevoke>;
    /// Active subscribers across the tenant's live channels.
    async fn active_subscriber_count(&self, tenant: &TenantId) -> StoreResult<u64>;
    /// Active subscribers of one channel.
    async fn channel_subscriber_count(&self, channel: &ChannelId) -> StoreResult<u64>;
    /// Recipients of the tenant's unfinished (queued or sending) announcements on live
    /// channels: an upper bound of its pending deliveries, read from the announcements alone.
    async fn unfinished_recipient_count(&self, tenant: &TenantId) -> StoreResult<u64>;
    /// Issues `nonce` unless its address already has an open challenge on the channel valid
    /// at `reuse_valid_at` (returned instead) or the channel has `max_outstanding` unused,
    /// unexpired ones (0: no cap). Check and insert hold the channel row's lock, so concurrent
    /// requests cannot pass the cap or give one address two challenges.
    async fn issue_nonce(
        &self,
        nonce: &NewNonce,
        reuse_valid_at: DateTime<Utc>,
        max_outstanding: u32,
    ) -> StoreResult<NonceIssue>;
    /// A challenge as stored, without spending it.
    async fn issued_nonce(&self, nonce: &str) -> StoreResult<Option<IssuedNonce>>;
    /// The tenant of a trigger that is not deleted.
    async fn trigger_tenant(&self, trigger_id: &str) -> StoreResult<Option<TenantId>>;
}

/// API key row shape shared by both backends.
#[derive(sqlx::FromRow)]
pub(super) struct ApiKeyRow {
    id: String,
    name: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: ApiKeyId::from_trusted(row.id),
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}
