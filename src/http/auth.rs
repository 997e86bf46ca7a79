//! Bearer authentication: the `Tenant` extractor (API keys) and `Admin` (the admin token).
//!
//! API keys are looked up by their SHA-256 hash. Successful lookups are cached in memory for a
//! short time so the hot path (posting announcements) skips a database round trip; only hits
//! are cached, so random keys cannot grow the cache, and the cache is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::crypto::hash_token;
use crate::domain::TenantId;

/// How long a resolved key stays cached. Bounds how long a revoked key keeps working on a
/// replica that saw it recently.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(30);

/// Entries kept at most; the cache is simply emptied when full (cheap, and rare).
const AUTH_CACHE_MAX: usize = 10_000;

/// Key-hash → tenant cache.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, (TenantId, Instant)>>,
}

impl AuthCache {
    fn get(&self, key_hash: &str) -> Option<TenantId> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key_hash)
            .filter(|(_, at)| at.elapsed() < AUTH_CACHE_TTL)
            .map(|(tenant, _)| tenant.clone())
    }

    fn put(&self, key_hash: String, tenant: TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= AUTH_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key_hash, (tenant, Instant::now()));
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
                let tenant = state
                    .store
                    .tenant_by_key_hash(&key_hash)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                state.auth_cache.put(key_hash, tenant.clone());
                tenant
            }
        };
        tracing::Span::current().record("tenant.id", tenant.as_str());
        state.rate_limiter.check(tenant.as_str())?;
        Ok(Self(tenant))
    }
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        // Comparing SHA-256 digests: timing reveals nothing useful about a 200-bit token.
        if hash_token(token) == *state.admin_token_hash {
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
