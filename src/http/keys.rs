//! Tenant API keys: a tenant holds several active keys at once, so a key is rotated by creating
//! its successor, deploying it, and revoking the old one, without downtime.
//!
//! Self-service under the tenant's own key (`/v1/keys`), and for the admin under
//! `/v1/tenants/{id}/keys` (a tenant that lost or leaked every key). A key's secret is shown
//! once, in the response that creates it; lists show ids, names and `last_used_at`. Revoking
//! takes effect at once in the replica that handles it; other replicas may accept the key for
//! up to 30 s more (their authentication cache). A tenant cannot revoke its own last key (409
//! `last_api_key`); the admin can.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Tenant};
use super::error::{ApiError, ErrorBody};
use super::extract::AppJson;
use super::rate_limit::refuse;
use super::AppState;
use crate::domain::{ApiKeyId, TenantId};
use crate::store::{ApiKey, KeyRevoke};
use crate::tenants::{self, CreateKeyError};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// Optional label, 1 to 100 characters (e.g. where the key is deployed).
    #[schema(example = "ci-2026-12")]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyOut {
    #[schema(example = "key_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the key last authenticated a request (to the minute); null if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[schema(example = "key_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub name: Option<String>,
    /// The new key. Shown only in this response; herald stores only its hash.
    #[schema(example = "hk_3fQ9xYk2LmN8pR5tV7wZ1aB4cD6eF8gH0jK2mN4p")]
    pub api_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Active keys, oldest first.
    pub items: Vec<ApiKeyOut>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// Creates a key for `tenant` through the tenant service, as both endpoints answer it.
async fn create_key(
    state: &AppState,
    tenant: &TenantId,
    name: Option<String>,
) -> Result<ApiKeyCreated, ApiError> {
    let max_active = state.quotas.max_api_keys;
    let created =
        tenants::create_api_key(state.store.as_ref(), tenant, name.as_deref(), max_active)
            .await
            .map_err(|e| match e {
                CreateKeyError::Name => ApiError::validation("invalid_name", e.to_string()),
                CreateKeyError::TooMany(_) => {
                    refuse("api_keys", "quota_exceeded", e.to_string(), 60)
                }
                CreateKeyError::Store(store) => store.into(),
            })?;
    Ok(ApiKeyCreated {
        id: created.id.to_string(),
        name: created.name,
        api_key: created.api_key,
        created_at: created.created_at,
    })
}

/// Revokes a key and drops it from this process's authentication cache.
async fn revoke(
    state: &AppState,
    tenant: &TenantId,
    raw_id: &str,
    keep_one: bool,
) -> Result<StatusCode, ApiError> {
    let id = ApiKeyId::parse(raw_id).ok_or(ApiError::NotFound("api_key"))?;
    match state.store.revoke_api_key(tenant, &id, keep_one).await? {
        KeyRevoke::Revoked { key_hash } => {
            state.auth_cache.evict(&key_hash);
            tracing::info!(tenant.id = %tenant, api_key.id = %id, "API key revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        KeyRevoke::LastKey => Err(ApiError::Conflict {
            code: "last_api_key",
            detail: "this is the tenant's last active key; create its successor first".into(),
        }),
        KeyRevoke::NotFound => Err(ApiError::NotFound("api_key")),
    }
}

/// Create another API key for the calling tenant.
#[utoipa::path(
    post, path = "/v1/keys", tag = "keys", request_body = ApiKeyIn,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Key created; its secret is shown only here", body = ApiKeyCreated),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
        (status = 429, description = "Too many active keys (`quota_exceeded`) or requests", body = ErrorBody),
    )
)]
async fn create_own_key(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AppJson(body): AppJson<ApiKeyIn>,
) -> Result<(StatusCode, axum::Json<ApiKeyCreated>), ApiError> {
    let created = create_key(&state, &tenant, body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// List the calling tenant's active API keys.
#[utoipa::path(
    get, path = "/v1/keys", tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Active keys", body = ApiKeyList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
async fn list_keys(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<axum::Json<ApiKeyList>, ApiError> {
    let keys = state.store.list_api_keys(&tenant).await?;
    Ok(axum::Json(ApiKeyList {
        items: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke one of the calling tenant's keys (the one in use too); it stops working at once.
#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such active key", body = ErrorBody),
        (status = 409, description = "The tenant's last active key (`last_api_key`)", body = ErrorBody),
    )
)]
async fn revoke_own_key(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&state, &tenant, &id, true).await
}

/// Create an API key for a tenant (admin token required).
#[utoipa::path(
    post, path = "/v1/tenants/{id}/keys", tag = "tenants", request_body = ApiKeyIn,
    params(("id" = String, Path, description = "Tenant id")),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Key created; its secret is shown only here", body = ApiKeyCreated),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
        (status = 429, description = "Too many active keys (`quota_exceeded`)", body = ErrorBody),
    )
)]
async fn create_tenant_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    AppJson(body): AppJson<ApiKeyIn>,
) -> Result<(StatusCode, axum::Json<ApiKeyCreated>), ApiError> {
    let tenant = TenantId::parse(&id).ok_or(ApiError::NotFound("tenant"))?;
    if !state.store.tenant_exists(&tenant).await? {
        return Err(ApiError::NotFound("tenant"));
    }
    let created = create_key(&state, &tenant, body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revoke any key of a tenant, its last one included (admin token required).
#[utoipa::path(
    delete, path = "/v1/tenants/{id}/keys/{key_id}", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id"), ("key_id" = String, Path, description = "Key id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such tenant or active key", body = ErrorBody),
    )
)]
async fn revoke_tenant_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = TenantId::parse(&id).ok_or(ApiError::NotFound("api_key"))?;
    revoke(&state, &tenant, &key_id, false).await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_own_key, list_keys))
        .routes(routes!(revoke_own_key))
        .routes(routes!(create_tenant_key))
        .routes(routes!(revoke_tenant_key))
}
