//! Webhook endpoints: where a tenant receives signed notifications of what happened
//! (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! A secret (`whsec_…`) is shown once, when an endpoint is created or its secret rotated; it is
//! stored sealed under the master key. After a rotation the previous secret keeps signing for
//! `[webhooks] secret_overlap_secs`, and each message carries both signatures meanwhile. URLs
//! must pass the SSRF guard (see `webhooks::guard`). `GET /v1/webhooks/{id}/deliveries` is the
//! endpoint's delivery log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod dto;

pub use dto::{
    DeliveryParams, WebhookDeliveryList, WebhookDeliveryOut, WebhookIn, WebhookList, WebhookOut,
    WebhookPatchIn, WebhookWithSecret,
};

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{check_limit, paginate, AppJson, AppQuery};
use super::rate_limit::refuse;
use super::AppState;
use crate::domain::WebhookEndpointId;
use crate::store::{NewWebhookEndpoint, WebhookEndpointPatch};
use crate::webhooks::guard::{self, AllowList, GuardError};
use crate::webhooks::{sign, EVENT_TYPES};

/// Longest accepted endpoint URL.
const MAX_URL_LEN: usize = 2000;

/// 422 unless the URL passes the SSRF guard.
async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::validation(
            "invalid_webhook_url",
            format!("url must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let allow = AllowList::parse(&state.webhooks.allow_private).unwrap_or_default();
    match guard::check(url, &allow).await {
        Ok(_) => Ok(url.to_owned()),
        Err(e @ GuardError::Forbidden(_)) => {
            Err(ApiError::validation("webhook_url_forbidden", e.to_string()))
        }
        Err(e) => Err(ApiError::validation("invalid_webhook_url", e.to_string())),
    }
}

/// 422 `invalid_event_type` unless every type is known; sorted and deduplicated.
fn event_types(types: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut types = types.unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::validation(
            "invalid_event_type",
            format!(
                "unknown event type `{bad}`; known: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn description(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(d) if d.chars().count() > 500 => Err(ApiError::validation(
            "invalid_description",
            "description must be at most 500 characters",
        )),
        other => Ok(other),
    }
}

fn endpoint_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(raw).ok_or(ApiError::NotFound("webhook"))
}

/// Create a webhook endpoint; its signing secret is shown only in this response.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookIn,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookWithSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `webhook_url_forbidden` (SSRF guard), `invalid_event_type`, `invalid_description`", body = ErrorBody),
        (status = 429, description = "The tenant has `[webhooks] max_endpoints` endpoints (`quota_exceeded`) or exceeded its request rate", body = ErrorBody),
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AppJson(body): AppJson<WebhookIn>,
) -> Result<(StatusCode, axum::Json<WebhookWithSecret>), ApiError> {
    // Cheap checks first: resolving the URL is the slow one.
    let event_types = event_types(body.event_types)?;
    let description = description(body.description)?;
    let url = checked_url(&state, &body.url).await?;
    let id = WebhookEndpointId::generate();
    let secret = sign::generate_secret();
    let new = NewWebhookEndpoint {
        secret_sealed: state.kek.seal(secret.as_bytes(), id.as_str()),
        id: id.to_string(),
        tenant,
        url,
        description,
        event_types,
    };
    let max = state.webhooks.max_endpoints;
    let endpoint = state
        .store
        .create_webhook_endpoint(&new, max)
        .await?
        .ok_or_else(|| {
            refuse(
                "webhook_endpoints",
                "quota_exceeded",
                format!("a tenant may have at most {max} webhook endpoints"),
                60,
            )
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookWithSecret {
            endpoint: endpoint.into(),
            secret,
        }),
    ))
}

/// List the tenant's webhook endpoints.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Endpoints, oldest first", body = WebhookList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
async fn list_webhooks(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<axum::Json<WebhookList>, ApiError> {
    let items = state.store.list_webhook_endpoints(&tenant).await?;
    Ok(axum::Json(WebhookList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Get one webhook endpoint (never its secret).
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn get_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookOut>, ApiError> {
    let id = endpoint_id(&id)?;
    let endpoint = state
        .store
        .get_webhook_endpoint(&tenant, id.as_str())
        .await?;
    Ok(axum::Json(
        endpoint.ok_or(ApiError::NotFound("webhook"))?.into(),
    ))
}

/// Change a webhook endpoint's URL, description or event types.
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookPatchIn,
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = WebhookOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`, `webhook_url_forbidden`, `invalid_event_type`, `invalid_description`", body = ErrorBody),
    )
)]
async fn update_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(body): AppJson<WebhookPatchIn>,
) -> Result<axum::Json<WebhookOut>, ApiError> {
    let id = endpoint_id(&id)?;
    let description = match body.description {
        Some(d) => Some(description(d)?),
        None => None,
    };
    let event_types = match body.event_types {
        Some(types) => Some(event_types(Some(types))?),
        None => None,
    };
    let url = match body.url {
        Some(url) => Some(checked_url(&state, &url).await?),
        None => None,
    };
    let patch = WebhookEndpointPatch {
        url,
        description,
        event_types,
    };
    let endpoint = state
        .store
        .update_webhook_endpoint(&tenant, id.as_str(), &patch)
        .await?;
    Ok(axum::Json(
        endpoint.ok_or(ApiError::NotFound("webhook"))?.into(),
    ))
}

/// Delete a webhook endpoint; its pending deliveries are given up.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(&id)?;
    if state
        .store
        .delete_webhook_endpoint(&tenant, id.as_str())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook"))
    }
}

/// Rotate an endpoint's signing secret. The new secret is shown only in this response; the
/// previous one keeps signing (both signatures sent) for the configured overlap.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Rotated, with the new secret", body = WebhookWithSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookWithSecret>, ApiError> {
    let id = endpoint_id(&id)?;
    let secret = sign::generate_secret();
    let sealed = state.kek.seal(secret.as_bytes(), id.as_str());
    let overlap = chrono::Duration::seconds(state.webhooks.secret_overlap_secs as i64);
    let endpoint = state
        .store
        .rotate_webhook_secret(&tenant, id.as_str(), &sealed, Utc::now() + overlap)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    tracing::info!(tenant.id = %tenant, webhook.id = %id, "webhook secret rotated");
    Ok(axum::Json(WebhookWithSecret {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// An endpoint's delivery log, newest first: per event, attempts, last status and next retry.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), DeliveryParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The delivery log", body = WebhookDeliveryList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`)", body = ErrorBody),
    )
)]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<DeliveryParams>,
) -> Result<axum::Json<WebhookDeliveryList>, ApiError> {
    let id = endpoint_id(&id)?;
    let limit = check_limit(params.limit)?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor is not a next_cursor value returned by this endpoint",
            )
        })?),
    };
    let rows = state
        .store
        .list_webhook_attempts(&tenant, id.as_str(), before, limit + 1)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let (rows, next_cursor) = paginate(rows, limit, |r| r.id.to_string());
    Ok(axum::Json(WebhookDeliveryList {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_webhook_deliveries))
}
