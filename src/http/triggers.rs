//! On-chain triggers: a channel's EVM event filters. Each matching log (after its confirmations)
//! becomes one announcement to the channel's subscribers, created by the chain watcher.
//!
//! Everything is validated at creation and on edit with the engine's
//! [`TriggerSpec::validate`](crate::chain::TriggerSpec::validate): the event ABI parses, the
//! condition names real arguments with comparable types, and the template renders on a sample
//! log. Failures are a 422 listing every problem under `errors`.

pub(super) mod dto;

pub use dto::{
    FieldErrorOut, TriggerIn, TriggerList, TriggerOut, TriggerPatchIn, TriggerValidationBody,
};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::error::ApiError;
use super::extract::{paginate, AppJson, AppQuery, ListParams};
use super::AppState;
use crate::chain::template::RENDER_BUDGET;
use crate::chain::{FieldError, TriggerSpec, ValidationErrors};
use crate::domain::{ChannelId, TenantId, TriggerId};
use crate::store::{NewTrigger, Trigger, TriggerPatch};
use dto::{invalid, TriggerErrors};

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

/// Validates `spec` on a blocking thread: compiling and rendering the template on a sample log
/// is CPU work that must not stall the async runtime. Past [`RENDER_BUDGET`] the trigger is
/// refused (the thread finishes on its own; fuel bounds it). `Err` is the response to send.
async fn validated(state: &AppState, spec: TriggerSpec) -> Result<TriggerSpec, Response> {
    let chains = state.chains.clone();
    let task = tokio::task::spawn_blocking(move || {
        let outcome = spec.validate(&chains).map(drop);
        (spec, outcome)
    });
    match tokio::time::timeout(RENDER_BUDGET, task).await {
        Ok(Ok((spec, Ok(())))) => Ok(spec),
        Ok(Ok((_, Err(errors)))) => Err(invalid(errors)),
        Ok(Err(panicked)) => Err(ApiError::Internal(Box::new(panicked)).into_response()),
        Err(_elapsed) => Err(invalid(ValidationErrors(vec![FieldError::new(
            "template",
            "template_too_slow",
            format!(
                "rendering a sample took longer than {} s",
                RENDER_BUDGET.as_secs()
            ),
        )]))),
    }
}

/// Create a trigger on a channel.
#[utoipa::path(
    post, path = "/v1/channels/{id}/triggers", tag = "triggers", request_body = TriggerIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = TriggerOut),
        TriggerErrors,
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
    let spec = match validated(&state, TriggerSpec::from(body)).await {
        Ok(spec) => spec,
        Err(refusal) => return Ok(refusal),
    };
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
        TriggerErrors,
    )
)]
async fn list_triggers(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<TriggerList>, ApiError> {
    let channel = channel_id(&id)?;
    let (page, limit) = params.probe_page(|c| TriggerId::parse(c).is_some())?;
    let triggers = state
        .store
        .triggers()
        .list_triggers(&tenant, &channel, &page)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let (items, next_cursor) = paginate(triggers, limit, |t| t.id.to_string());
    let last: std::collections::HashMap<String, i64> = state
        .store
        .triggers()
        .last_match_blocks(&channel)
        .await?
        .into_iter()
        .collect();
    let items = items
        .into_iter()
        .map(|t| {
            let last_match_block = last.get(t.id.as_str()).map(|b| *b as u64);
            TriggerOut {
                last_match_block,
                ..t.into()
            }
        })
        .collect();
    Ok(axum::Json(TriggerList { items, next_cursor }))
}

/// Get one trigger.
#[utoipa::path(
    get, path = "/v1/channels/{id}/triggers/{trigger_id}", tag = "triggers",
    params(TriggerPath),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = TriggerOut),
        TriggerErrors,
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
        TriggerErrors,
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
        spec = match validated(&state, spec).await {
            Ok(spec) => spec,
            Err(refusal) => return Ok(refusal),
        };
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
        TriggerErrors,
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
