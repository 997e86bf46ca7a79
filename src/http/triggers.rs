//! On-chain triggers: a channel's EVM event filters. Each matching log (after its confirmations)
//! becomes one announcement to the channel's subscribers, created by the chain watcher.
//!
//! Everything is validated at creation and on edit with the engine's
//! [`TriggerSpec::validate`](crate::chain::TriggerSpec::validate): the event ABI parses, the
//! condition names real arguments with comparable types, and the template renders on a sample
//! log. Failures are a 422 listing every problem under `errors`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{paginate, AppJson, AppQuery, ListParams};
use super::AppState;
use crate::chain::{TriggerSpec, ValidationErrors};
use crate::domain::{ChannelId, TenantId, TriggerId};
use crate::store::{NewTrigger, Trigger, TriggerPatch};

/// A new trigger.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerIn {
    /// Chain to watch; must be configured under `[[chains]]`.
    #[schema(example = 1)]
    pub chain_id: u64,
    /// One contract address (or use `addresses`).
    #[schema(example = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640")]
    pub address: Option<String>,
    /// Several contract addresses (at most 100).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Human-readable event signature, or an ABI JSON fragment of the event.
    #[schema(value_type = Object, example = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)")]
    pub event: serde_json::Value,
    /// Optional JSON condition over the decoded arguments: `{"arg","op","value"}` with
    /// `== != > >= < <= in`, combined with `all`, `any`, `not`.
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    /// minijinja template for the announcement: `args.*`, `tx.hash`, `block.number`,
    /// `chain.name`, `log.address`; filters `units(decimals)`, `short`, `explorer_tx`, ….
    #[schema(
        example = "Swap of {{ args.amount0 | units(6) }} USDC in {{ tx.hash | explorer_tx }}"
    )]
    pub template: String,
    /// Confirmations before announcing (default: the chain's).
    pub confirmations: Option<u64>,
    /// Opt-in history: announce matching logs from this block on (capped by the chain's
    /// `max_backfill_blocks`). Without it the trigger is live from creation.
    pub from_block: Option<u64>,
}

impl From<TriggerIn> for TriggerSpec {
    fn from(t: TriggerIn) -> Self {
        TriggerSpec {
            chain_id: t.chain_id,
            address: t.address,
            addresses: t.addresses,
            event: t.event,
            condition: t.condition,
            template: t.template,
            confirmations: t.confirmations,
            from_block: t.from_block,
        }
    }
}

/// Changes to a trigger; omitted fields stay, `"condition": null` removes the condition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerPatchIn {
    /// `true` pauses, `false` resumes. A resumed trigger continues from the current block:
    /// events that happened while it was paused are not announced.
    pub paused: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Option<serde_json::Value>>,
    pub template: Option<String>,
}

/// Distinguishes `"condition": null` (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct TriggerOut {
    #[schema(example = "trg_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub channel_id: String,
    pub chain_id: u64,
    /// Watched contract addresses, as submitted.
    pub addresses: Vec<String>,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    pub template: String,
    pub confirmations: Option<u64>,
    pub from_block: Option<u64>,
    pub paused: bool,
    /// Grows on every edit of the condition or template.
    pub revision: u64,
    /// First block the trigger considers.
    pub start_block: u64,
    /// Highest block scanned for it so far.
    pub scanned_to: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Trigger> for TriggerOut {
    fn from(t: Trigger) -> Self {
        let spec = t.spec;
        let addresses = spec.address.into_iter().chain(spec.addresses).collect();
        TriggerOut {
            id: t.id.to_string(),
            channel_id: t.channel_id.to_string(),
            chain_id: spec.chain_id,
            addresses,
            event: spec.event,
            condition: spec.condition,
            template: spec.template,
            confirmations: spec.confirmations,
            from_block: spec.from_block,
            paused: t.paused,
            revision: t.revision,
            start_block: t.start_block,
            scanned_to: t.scanned_to,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TriggerList {
    pub items: Vec<TriggerOut>,
    pub next_cursor: Option<String>,
}

/// One problem with a trigger, addressed to a request field.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorOut {
    /// JSON path of the field, e.g. `condition.all[0].arg`.
    pub field: String,
    pub code: String,
    pub detail: String,
}

/// 422 body for an invalid trigger: the usual `code`/`detail` plus every problem found.
#[derive(Serialize, ToSchema)]
pub struct TriggerValidationBody {
    #[schema(example = "invalid_trigger")]
    pub code: String,
    pub detail: String,
    pub errors: Vec<FieldErrorOut>,
}

/// Every validation problem at once, as a 422.
fn invalid(errors: ValidationErrors) -> Response {
    let body = TriggerValidationBody {
        code: "invalid_trigger".into(),
        detail: errors.to_string(),
        errors: errors
            .0
            .into_iter()
            .map(|e| FieldErrorOut {
                field: e.field,
                code: e.code.into(),
                detail: e.detail,
            })
            .collect(),
    };
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// Parses a channel id from the path; a malformed one is as unknown as a missing one.
fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw).ok_or(ApiError::NotFound("channel"))
}

/// The path of one trigger: `/v1/channels/{id}/triggers/{trigger_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct TriggerPath {
    /// Channel id
    id: String,
    /// Trigger id
    trigger_id: String,
}

impl TriggerPath {
    /// Parses both ids (each malformed id is as unknown as a missing one).
    fn ids(&self) -> Result<(ChannelId, TriggerId), ApiError> {
        let channel = channel_id(&self.id)?;
        let trigger = TriggerId::parse(&self.trigger_id).ok_or(ApiError::NotFound("trigger"))?;
        Ok((channel, trigger))
    }
}

/// Create a trigger on a channel.
#[utoipa::path(
    post, path = "/v1/channels/{id}/triggers", tag = "triggers", request_body = TriggerIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = TriggerOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 422, description = "Invalid trigger; `errors` lists every problem", body = TriggerValidationBody),
    )
)]
async fn create_trigger(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(raw): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let channel = channel_id(&id)?;
    let body: TriggerIn = serde_json::from_value(raw)
        .map_err(|e| ApiError::validation("invalid_body", e.to_string()))?;
    let spec = TriggerSpec::from(body);
    if let Err(errors) = spec.validate(&state.chains) {
        return Ok(invalid(errors));
    }
    let new = NewTrigger {
        id: TriggerId::generate(),
        tenant,
        channel,
        spec,
    };
    let trigger = state
        .store
        .triggers()
        .create_trigger(&new)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    tracing::info!(trigger.id = %trigger.id, chain.id = trigger.spec.chain_id, "trigger created");
    Ok((StatusCode::CREATED, axum::Json(TriggerOut::from(trigger))).into_response())
}

/// List a channel's triggers, oldest first.
#[utoipa::path(
    get, path = "/v1/channels/{id}/triggers", tag = "triggers",
    params(("id" = String, Path, description = "Channel id"), ListParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = TriggerList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
    )
)]
async fn list_triggers(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<TriggerList>, ApiError> {
    let channel = channel_id(&id)?;
    let (page, limit) = params.probe_page()?;
    let triggers = state
        .store
        .triggers()
        .list_triggers(&tenant, &channel, &page)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let (items, next_cursor) = paginate(triggers, limit, |t| t.id.to_string());
    Ok(axum::Json(TriggerList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Get one trigger.
#[utoipa::path(
    get, path = "/v1/channels/{id}/triggers/{trigger_id}", tag = "triggers",
    params(TriggerPath),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = TriggerOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
    )
)]
async fn get_trigger(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<TriggerPath>,
) -> Result<axum::Json<TriggerOut>, ApiError> {
    let trigger = find(&state, &tenant, &path).await?;
    Ok(axum::Json(trigger.into()))
}

async fn find(
    state: &AppState,
    tenant: &TenantId,
    path: &TriggerPath,
) -> Result<Trigger, ApiError> {
    let (channel, trigger) = path.ids()?;
    state
        .store
        .triggers()
        .get_trigger(tenant, &channel, &trigger)
        .await?
        .ok_or(ApiError::NotFound("trigger"))
}

/// Pause, resume, or edit a trigger's condition or template (validated like a new trigger).
#[utoipa::path(
    patch, path = "/v1/channels/{id}/triggers/{trigger_id}", tag = "triggers", request_body = TriggerPatchIn,
    params(TriggerPath),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = TriggerOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 422, description = "Invalid trigger; `errors` lists every problem", body = TriggerValidationBody),
    )
)]
async fn update_trigger(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<TriggerPath>,
    AppJson(body): AppJson<TriggerPatchIn>,
) -> Result<Response, ApiError> {
    let current = find(&state, &tenant, &path).await?;
    let mut spec = current.spec.clone();
    if let Some(condition) = body.condition {
        spec.condition = condition;
    }
    if let Some(template) = body.template {
        spec.template = template;
    }
    let edited = spec != current.spec;
    if edited {
        if let Err(errors) = spec.validate(&state.chains) {
            return Ok(invalid(errors));
        }
    }
    let patch = TriggerPatch {
        paused: body.paused,
        spec: edited.then_some(spec),
    };
    let trigger = state
        .store
        .triggers()
        .update_trigger(&tenant, &current.channel_id, &current.id, &patch)
        .await?
        .ok_or(ApiError::NotFound("trigger"))?;
    Ok(axum::Json(TriggerOut::from(trigger)).into_response())
}

/// Delete a trigger. Announcements it already created stay; matches still waiting for
/// confirmations are dropped.
#[utoipa::path(
    delete, path = "/v1/channels/{id}/triggers/{trigger_id}", tag = "triggers",
    params(TriggerPath),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
    )
)]
async fn delete_trigger(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<TriggerPath>,
) -> Result<StatusCode, ApiError> {
    let (channel, trigger) = path.ids()?;
    if state
        .store
        .triggers()
        .delete_trigger(&tenant, &channel, &trigger)
        .await?
    {
        tracing::info!(trigger.id = %trigger, "trigger deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("trigger"))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_trigger, list_triggers))
        .routes(routes!(get_trigger, update_trigger, delete_trigger))
}
