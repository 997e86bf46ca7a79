//! Bearer authentication: the `Tenant` extractor (API keys) and `Admin` (the admin token).
//!
//! API keys are looked up by their SHA-256 hash. Successful lookups are cached in memory for a
//! short time so the hot path (posting announcements) skips a database round trip; only hits
//! are cached, so random keys cannot grow the cache, and the cache is bounded. Revoking a key
//! evicts it from this process's cache at once; another replica that resolved it recently
//! accepts it for at most [`AUTH_CACHE_TTL`] more. A key's `last_used_at` is written when a
//! lookup finds it older than [`LAST_USED_RESOLUTION`], i.e. at most about once a minute per key
//! and process, off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::crypto::hash_token;
use crate::domain::{ApiKeyId, TenantId};

/// How long a resolved key stays cached. Bounds how long a revoked key keeps working on a
/// replica other than the one that revoked it.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(30);

/// How stale a key's `last_used_at` may get before a request refreshes it.
pub const LAST_USED_RESOLUTION: chrono::Duration = chrono::Duration::seconds(60);

/// Entries kept at most; the cache is simply emptied when full (cheap, and rare).
const AUTH_CACHE_MAX: usize = 10_000;

/// Key-hash → (tenant, key) cache.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, (TenantId, ApiKeyId, Instant)>>,
}

impl AuthCache {
    fn get(&self, key_hash: &str) -> Option<TenantId> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key_hash)
            .filter(|(_, _, at)| at.elapsed() < AUTH_CACHE_TTL)
            .map(|(tenant, _, _)| tenant.clone())
    }

    fn put(&self, key_hash: String, tenant: TenantId, key: ApiKeyId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= AUTH_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key_hash, (tenant, key, Instant::now()));
    }

    /// Forgets a key (it was revoked), so its next use is looked up again and refused.
    pub fn evict(&self, key_hash: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key_hash);
    }
}

/// The authenticated tenant, from `Authorization: Bearer hk_…`.
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let key_hash = hash_token(token);
        let tenant = match state.auth_cache.get(&key_hash) {
            Some(tenant) => tenant,
            None => {
                let owner = state
                    .store
                    .api_key_owner(&key_hash)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                let now = chrono::Utc::now();
                if owner
                    .last_used_at
                    .is_none_or(|at| now - at >= LAST_USED_RESOLUTION)
                {
                    touch(state, owner.key.clone(), now);
                }
                state
                    .auth_cache
                    .put(key_hash, owner.tenant.clone(), owner.key);
                owner.tenant
            }
        };
        tracing::Span::current().record("tenant.id", tenant.as_str());
        state.rate_limiter.check(tenant.as_str())?;
        Ok(Self(tenant))
    }
}

/// Records a key's use in the background: bookkeeping must not slow or fail the request.
fn touch(state: &AppState, key: ApiKeyId, now: chrono::DateTime<chrono::Utc>) {
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.touch_api_key(&key, now).await {
            tracing::warn!(%error, api_key.id = %key, "could not record the key's last use");
        }
    });
}

/// Proof that the request carries the admin token.
pub struct Admin;

/// The admin token's hash. A configured token (`admin_token`) is fixed; a generated one lives
/// (hashed) in the database and is re-read after [`AUTH_CACHE_TTL`], so `herald admin
/// reset-token` takes effect on running servers within that time.
pub struct AdminToken {
    configured: bool,
    hash: Mutex<(String, Instant)>,
}

impl AdminToken {
    /// The hash of a token set in the configuration.
    pub fn configured(hash: String) -> Self {
        Self {
            configured: true,
            hash: Mutex::new((hash, Instant::now())),
        }
    }

    /// The hash read from the database's settings.
    pub fn stored(hash: String) -> Self {
        Self {
            configured: false,
            hash: Mutex::new((hash, Instant::now())),
        }
    }

    async fn current(&self, store: &dyn crate::store::Store) -> Result<String, ApiError> {
        let (hash, read_at) = self.hash.lock().expect("admin token lock").clone();
        if self.configured || read_at.elapsed() < AUTH_CACHE_TTL {
            return Ok(hash);
        }
        let fresh = store
            .setting(crate::app::ADMIN_TOKEN_SETTING)
            .await?
            .unwrap_or(hash);
        *self.hash.lock().expect("admin token lock") = (fresh.clone(), Instant::now());
        Ok(fresh)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let expected = state.admin_token.current(state.store.as_ref()).await?;
        // Comparing SHA-256 digests: timing reveals nothing useful about a 200-bit token.
        if hash_token(token) == expected {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}
