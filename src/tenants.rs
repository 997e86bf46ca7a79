//! Tenant service: the one way to create a tenant with its first API key (`POST /v1/tenants`,
//! `herald tenant create`) and to create a further API key (`POST /v1/keys`,
//! `POST /v1/tenants/{id}/keys`, `herald tenant key create`); the REST handlers and the CLI
//! both call these.

use chrono::{DateTime, Utc};

use crate::crypto::{generate_token, hash_token, API_KEY_PREFIX};
use crate::domain::name::{parse_name, NameError};
use crate::domain::{ApiKeyId, TenantId};
use crate::store::{NewApiKey, NewTenant, Store, StoreError};

/// Longest API key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// A new tenant and its API key. The key exists in clear only here (herald stores its hash),
/// so this type has no `Debug`.
pub struct CreatedTenant {
    pub id: TenantId,
    pub name: String,
    pub api_key: String,
    pub created_at: DateTime<Utc>,
}

/// Why a tenant was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    /// The name breaks the display-name rule. Not retryable.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Storing failed; retryable as the store error is.
    #[error("storing the tenant failed")]
    Store(#[from] StoreError),
}

/// Validates `name`, generates the tenant's first API key and stores both.
pub async fn create_tenant(
    store: &dyn Store,
    name: &str,
) -> Result<CreatedTenant, CreateTenantError> {
    let name = parse_name(name)?;
    let api_key = generate_token(API_KEY_PREFIX);
    let tenant = store
        .create_tenant(&NewTenant {
            id: TenantId::generate(),
            name: name.clone(),
            key_hash: hash_token(&api_key),
        })
        .await?;
    Ok(CreatedTenant {
        id: tenant.id,
        name,
        api_key,
        created_at: tenant.created_at,
    })
}

/// A new API key. Its secret exists in clear only here, so this type has no `Debug`.
pub struct CreatedKey {
    pub id: ApiKeyId,
    pub name: Option<String>,
    pub api_key: String,
    pub created_at: DateTime<Utc>,
}

/// Why an API key was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    /// The name is empty or longer than [`MAX_KEY_NAME_CHARS`]. Not retryable.
    #[error("name must be 1 to {MAX_KEY_NAME_CHARS} characters")]
    Name,
    /// The tenant already has its quota of active keys. Not retryable until one is revoked.
    #[error("the tenant already has {0} active API keys; revoke one first")]
    TooMany(u32),
    /// Storing failed; retryable as the store error is.
    #[error("storing the key failed")]
    Store(#[from] StoreError),
}

/// Generates an API key for `tenant` and stores its hash, unless the tenant already has
/// `max_active` active keys (0: no limit), checked in the same statement.
pub async fn create_api_key(
    store: &dyn Store,
    tenant: &TenantId,
    name: Option<&str>,
    max_active: u32,
) -> Result<CreatedKey, CreateKeyError> {
    let name = match name.map(str::trim) {
        None => None,
        Some(n) if !n.is_empty() && n.chars().count() <= MAX_KEY_NAME_CHARS => Some(n.to_owned()),
        Some(_) => return Err(CreateKeyError::Name),
    };
    let api_key = generate_token(API_KEY_PREFIX);
    let new = NewApiKey {
        id: ApiKeyId::generate(),
        tenant: tenant.clone(),
        name,
        key_hash: hash_token(&api_key),
    };
    let created = store
        .create_api_key(&new, max_active)
        .await?
        .ok_or(CreateKeyError::TooMany(max_active))?;
    tracing::info!(tenant.id = %tenant, api_key.id = %created.id, "API key created");
    Ok(CreatedKey {
        id: created.id,
        name: created.name,
        api_key,
        created_at: created.created_at,
    })
}
