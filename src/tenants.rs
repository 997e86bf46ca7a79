//! Tenant service: the one way to create a tenant with its first API key, called by the REST
//! handler (`POST /v1/tenants`) and by `herald tenant create`.

use chrono::{DateTime, Utc};

use crate::crypto::{generate_token, hash_token, API_KEY_PREFIX};
use crate::domain::name::{parse_name, NameError};
use crate::domain::TenantId;
use crate::store::{NewTenant, Store, StoreError};

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
