//! Subscribers of a channel: wallet addresses that receive its announcements.
//!
//! Unsubscribing is a soft delete (history stays, a later PUT re-activates). Addresses are
//! validated (EIP-55 when mixed case) and stored lowercase.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::channels::load_channel;
use super::error::{ApiError, ErrorBody};
use super::extract::{paginate, AppJson, AppQuery, ListParams};
use super::AppState;
use crate::domain::{Address, AddressError};
use crate::store::{ConsentContext, ConsentSource, SubscribeOutcome};

/// Consent context of a tenant's call: the request id is the evidence, so a log entry can be
/// matched to the request (and the tenant's own records of it).
fn consent(source: ConsentSource, headers: &HeaderMap) -> ConsentContext {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    ConsentContext {
        source,
        evidence: request_id.map(|id| format!("request:{id}")),
    }
}

/// Most addresses accepted by one batch call (and one targeted announcement).
pub const MAX_BATCH: usize = 10_000;

#[derive(Serialize, ToSchema)]
pub struct SubscriberOut {
    /// Lowercase address.
    #[schema(example = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")]
    pub address: String,
    /// Always `active` for listed subscribers.
    pub status: String,
    /// When the subscription last became active (in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberList {
    pub items: Vec<SubscriberOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    /// Up to 10,000 addresses.
    pub addresses: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InvalidAddress {
    pub address: String,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    /// Newly subscribed or re-activated.
    pub added: u64,
    /// Already active (including duplicates within the request).
    pub already: u64,
    /// Rejected entries with the reason.
    pub invalid: Vec<InvalidAddress>,
}

/// Parses an address from a path segment; malformed input is 422 with the reason.
pub fn parse_address(raw: &str) -> Result<Address, ApiError> {
    Address::parse(raw).map_err(|e| ApiError::validation("invalid_address", format!("{raw}: {e}")))
}

/// Subscribe an address (idempotent).
#[utoipa::path(
    put, path = "/v1/channels/{id}/subscribers/{address}", tag = "subscribers",
    params(("id" = String, Path, description = "Channel id"), ("address" = String, Path, description = "0x address")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Newly subscribed or re-activated", body = SubscriberOut),
        (status = 200, description = "Already subscribed", body = SubscriberOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
        (status = 429, description = "Request rate or the tenant's active-subscriber quota (`quota_exceeded`) exceeded", body = ErrorBody),
    )
)]
async fn put_subscriber(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, address)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<(StatusCode, axum::Json<SubscriberOut>), ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let address = parse_address(&address)?;
    super::quotas::ensure_room_for(&state, &tenant, &channel.id, &address).await?;
    let outcome = state
        .store
        .subscribe_with_consent(
            &channel.id,
            &address,
            &consent(ConsentSource::Api, &headers),
        )
        .await?;
    let status = match outcome {
        SubscribeOutcome::AlreadyActive => StatusCode::OK,
        SubscribeOutcome::Added | SubscribeOutcome::Reactivated => StatusCode::CREATED,
    };
    let out = SubscriberOut {
        address: address.to_string(),
        status: "active".into(),
        subscribed_at: None,
    };
    Ok((status, axum::Json(out)))
}

/// Unsubscribe an address (idempotent; history is kept).
#[utoipa::path(
    delete, path = "/v1/channels/{id}/subscribers/{address}", tag = "subscribers",
    params(("id" = String, Path, description = "Channel id"), ("address" = String, Path, description = "0x address")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Not subscribed any more"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
    )
)]
async fn delete_subscriber(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, address)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let address = parse_address(&address)?;
    state
        .store
        .unsubscribe_with_consent(
            &channel.id,
            &address,
            &consent(ConsentSource::Api, &headers),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List active subscribers, ordered by address.
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribers", tag = "subscribers",
    params(("id" = String, Path, description = "Channel id"), ListParams),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = SubscriberList), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody))
)]
async fn list_subscribers(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<SubscriberList>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let (page, limit) = params.probe_page(|c| Address::parse(c).is_ok())?;
    let subscribers = state.store.list_subscribers(&channel.id, &page).await?;
    let (items, next_cursor) = paginate(subscribers, limit, |s| s.address.to_string());
    let items = items
        .into_iter()
        .map(|s| SubscriberOut {
            address: s.address.to_string(),
            status: "active".into(),
            subscribed_at: Some(s.subscribed_at),
        })
        .collect();
    Ok(axum::Json(SubscriberList { items, next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberCount {
    /// Active subscribers of the channel.
    pub active: u64,
}

/// Count a channel's active subscribers.
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribers/count", tag = "subscribers",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = SubscriberCount), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody))
)]
async fn count_subscribers(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<SubscriberCount>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let active = state.store.channel_subscriber_count(&channel.id).await?;
    Ok(axum::Json(SubscriberCount { active }))
}

/// Subscribe up to 10,000 addresses at once (`[quotas] max_import_batch`); invalid entries are
/// reported, not fatal.
#[utoipa::path(
    post, path = "/v1/channels/{id}/subscribers/batch", tag = "subscribers", request_body = BatchIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = BatchOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody), (status = 413, description = "Request body too large", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
        (status = 429, description = "Request rate or the tenant's active-subscriber quota (`quota_exceeded`, the batch counted whole) exceeded", body = ErrorBody),
    )
)]
async fn batch_subscribe(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppJson(body): AppJson<BatchIn>,
) -> Result<axum::Json<BatchOut>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let max = state.quotas.max_import_batch;
    if body.addresses.len() > max {
        return Err(ApiError::validation(
            "too_many_addresses",
            format!("at most {max} addresses per batch"),
        ));
    }
    let (valid, invalid) = partition_addresses(body.addresses);
    let duplicates = valid.duplicates;
    let unique: Vec<Address> = valid.unique.into_iter().collect();
    super::quotas::ensure_subscriber_room(&state, &tenant, unique.len() as u64).await?;
    let context = consent(ConsentSource::Import, &headers);
    let outcome = state
        .store
        .subscribe_many_with_consent(&channel.id, &unique, &context)
        .await?;
    Ok(axum::Json(BatchOut {
        added: outcome.added,
        already: outcome.already + duplicates,
        invalid,
    }))
}

/// Valid, de-duplicated addresses and how many duplicates were dropped.
pub struct UniqueAddresses {
    pub unique: BTreeSet<Address>,
    pub duplicates: u64,
}

/// Splits raw strings into valid unique addresses and rejected entries with their reasons.
pub fn partition_addresses(raw: Vec<String>) -> (UniqueAddresses, Vec<InvalidAddress>) {
    let mut valid = UniqueAddresses {
        unique: BTreeSet::new(),
        duplicates: 0,
    };
    let mut invalid = Vec::new();
    for entry in raw {
        match Address::parse(&entry) {
            Ok(address) => {
                if !valid.unique.insert(address) {
                    valid.duplicates += 1;
                }
            }
            Err(e) => {
                let reason = match e {
                    AddressError::Malformed => "malformed",
                    AddressError::BadChecksum => "bad_checksum",
                };
                invalid.push(InvalidAddress {
                    address: entry,
                    reason: reason.into(),
                });
            }
        }
    }
    (valid, invalid)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_subscriber, delete_subscriber))
        .routes(routes!(list_subscribers))
        .routes(routes!(count_subscribers))
        .routes(routes!(batch_subscribe))
}
