//! `POST /v1/tenants`: the admin creates a tenant and receives its first API key, once;
//! `GET /v1/tenants`: the admin lists them.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{paginate, AppJson, AppQuery, ListParams};
use super::AppState;
use crate::domain::name::parse_name;
use crate::domain::TenantId;
use crate::store::TenantSummary;
use crate::tenants::CreateTenantError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// Display name, 1 to 200 characters.
    #[schema(example = "Acme DAO")]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantOut {
    #[schema(example = "ten_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub name: String,
    /// The tenant's API key. Shown only in this response; herald stores only its hash.
    #[schema(example = "hk_3fQ9xYk2LmN8pR5tV7wZ1aB4cD6eF8gH0jK2mN4p")]
    pub api_key: String,
    pub created_at: DateTime<Utc>,
}

/// A tenant as the admin lists it (never its keys).
#[derive(Serialize, ToSchema)]
pub struct TenantSummaryOut {
    #[schema(example = "ten_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Live (not deleted) channels.
    pub channels: i64,
    /// Active API keys.
    pub active_keys: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantSummaryOut>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<TenantSummary> for TenantSummaryOut {
    fn from(t: TenantSummary) -> Self {
        Self {
            id: t.tenant.id.to_string(),
            name: t.tenant.name,
            created_at: t.tenant.created_at,
            channels: t.channels,
            active_keys: t.active_keys,
        }
    }
}

/// Validates a display name shared by tenants and channels.
pub fn validate_name(name: &str) -> Result<String, ApiError> {
    parse_name(name).map_err(|e| ApiError::validation("invalid_name", e.to_string()))
}

impl From<CreateTenantError> for ApiError {
    fn from(err: CreateTenantError) -> Self {
        match err {
            CreateTenantError::Name(e) => ApiError::validation("invalid_name", e.to_string()),
            CreateTenantError::Store(e) => e.into(),
        }
    }
}

/// Create a tenant (admin token required).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants",
    request_body = TenantIn,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Tenant created; the API key is shown only here", body = TenantOut),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
    )
)]
async fn create_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    AppJson(body): AppJson<TenantIn>,
) -> Result<(StatusCode, axum::Json<TenantOut>), ApiError> {
    let created = crate::tenants::create_tenant(state.store.as_ref(), &body.name).await?;
    tracing::info!(tenant.id = %created.id, "tenant created");
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantOut {
            id: created.id.to_string(),
            name: created.name,
            api_key: created.api_key,
            created_at: created.created_at,
        }),
    ))
}

/// List tenants, oldest first (admin token required).
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants", params(ListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "OK", body = TenantList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 400, description = "Invalid cursor", body = ErrorBody),
        (status = 422, description = "Invalid limit", body = ErrorBody),
    )
)]
async fn list_tenants(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<TenantList>, ApiError> {
    let (page, limit) = params.probe_page(|c| TenantId::parse(c).is_some())?;
    let tenants = state.store.list_tenants(&page).await?;
    let (items, next_cursor) = paginate(tenants, limit, |t| t.tenant.id.to_string());
    Ok(axum::Json(TenantList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_tenant, list_tenants))
}
