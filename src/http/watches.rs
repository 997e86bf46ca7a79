//! Watches: per-subscriber conditions on chain state. For every subscriber of the channel (or
//! of one topic) herald calls a view function with the subscriber's address, evaluates a
//! condition over its outputs, and alerts only the subscriber whose own state crossed; the
//! evaluator is `workers::watch_evaluator`.
//!
//! Validated at creation and on edit with [`WatchSpec::validate`]: the function signature
//! parses, every input is bound (one address to the subscriber), the conditions name real
//! outputs with comparable types, and the template renders on sample outputs. Failures are a
//! 422 `invalid_watch` listing every problem under `errors`.

mod dto;

pub use dto::{ArgBindingDto, WatchIn, WatchList, WatchOut, WatchPatchIn};

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
use super::triggers::dto::{invalid_as, TriggerErrors};
use super::triggers::TriggerValidationBody;
use super::AppState;
use crate::chain::template::RENDER_BUDGET;
use crate::chain::watch::WatchSpec;
use crate::chain::{FieldError, ValidationErrors};
use crate::domain::{ChannelId, TenantId, WatchId};
use crate::store::{NewWatch, Watch, WatchPatch};

fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw).ok_or(ApiError::NotFound("channel"))
}

/// The path of one watch: `/v1/channels/{id}/watches/{watch_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct WatchPath {
    /// Channel id
    id: String,
    /// Watch id
    watch_id: String,
}

impl WatchPath {
    fn ids(&self) -> Result<(ChannelId, WatchId), ApiError> {
        let channel = channel_id(&self.id)?;
        let watch = WatchId::parse(&self.watch_id).ok_or(ApiError::NotFound("watch"))?;
        Ok((channel, watch))
    }
}

fn invalid(errors: Vec<FieldError>) -> Response {
    invalid_as("invalid_watch", ValidationErrors(errors))
}

/// Validates `spec` on a blocking thread (the template's sample render is CPU work), and
/// checks that its topic exists on the channel. `Err` is the response to send.
async fn validated(
    state: &AppState,
    channel: &ChannelId,
    spec: WatchSpec,
) -> Result<WatchSpec, Response> {
    let chains = state.chains.clone();
    let task = tokio::task::spawn_blocking(move || {
        let outcome = spec.validate(&chains).map(drop);
        (spec, outcome)
    });
    let spec = match tokio::time::timeout(RENDER_BUDGET, task).await {
        Ok(Ok((spec, Ok(())))) => spec,
        Ok(Ok((_, Err(errors)))) => return Err(invalid(errors.0)),
        Ok(Err(panicked)) => return Err(ApiError::Internal(Box::new(panicked)).into_response()),
        Err(_elapsed) => {
            return Err(invalid(vec![FieldError::new(
                "template",
                "template_too_slow",
                format!(
                    "rendering a sample took longer than {} s",
                    RENDER_BUDGET.as_secs()
                ),
            )]))
        }
    };
    if let Some(topic) = &spec.topic {
        match state.store.get_topic(channel, topic).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(invalid(vec![FieldError::new(
                    "topic",
                    "unknown_topic",
                    format!("the channel has no topic {topic:?}"),
                )]))
            }
            Err(err) => return Err(ApiError::from(err).into_response()),
        }
    }
    Ok(spec)
}

/// Create a watch on a channel.
#[utoipa::path(
    post, path = "/v1/channels/{id}/watches", tag = "watches", request_body = WatchIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = WatchOut),
        TriggerErrors,
        (status = 422, description = "Invalid watch (`invalid_watch`); `errors` lists every problem", body = TriggerValidationBody),
    )
)]
async fn create_watch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(raw): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let channel = channel_id(&id)?;
    let body: WatchIn = serde_json::from_value(raw)
        .map_err(|e| ApiError::validation("invalid_body", e.to_string()))?;
    state
        .store
        .get_channel(&tenant, &channel)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let spec = match validated(&state, &channel, WatchSpec::from(body)).await {
        Ok(spec) => spec,
        Err(refusal) => return Ok(refusal),
    };
    let new = NewWatch {
        id: WatchId::generate(),
        tenant,
        channel,
        spec,
    };
    let watch = state
        .store
        .create_watch(&new)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    tracing::info!(watch.id = %watch.id, chain.id = watch.spec.chain_id, "watch created");
    Ok((StatusCode::CREATED, axum::Json(WatchOut::from(watch))).into_response())
}

/// List a channel's watches, oldest first.
#[utoipa::path(
    get, path = "/v1/channels/{id}/watches", tag = "watches",
    params(("id" = String, Path, description = "Channel id"), ListParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = WatchList),
        TriggerErrors,
    )
)]
async fn list_watches(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<WatchList>, ApiError> {
    let channel = channel_id(&id)?;
    let (page, limit) = params.probe_page(|c| WatchId::parse(c).is_some())?;
    let watches = state
        .store
        .list_watches(&tenant, &channel, &page)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let (items, next_cursor) = paginate(watches, limit, |w| w.id.to_string());
    Ok(axum::Json(WatchList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Get one watch, with how many subscribers are currently alerted.
#[utoipa::path(
    get, path = "/v1/channels/{id}/watches/{watch_id}", tag = "watches",
    params(WatchPath),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = WatchOut),
        TriggerErrors,
    )
)]
async fn get_watch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<WatchPath>,
) -> Result<axum::Json<WatchOut>, ApiError> {
    Ok(axum::Json(find(&state, &tenant, &path).await?.into()))
}

async fn find(state: &AppState, tenant: &TenantId, path: &WatchPath) -> Result<Watch, ApiError> {
    let (channel, watch) = path.ids()?;
    state
        .store
        .get_watch(tenant, &channel, &watch)
        .await?
        .ok_or(ApiError::NotFound("watch"))
}

/// Pause, resume, or edit a watch's conditions, template or timing (validated like a new
/// watch). Subscribers keep their armed/alerted state.
#[utoipa::path(
    patch, path = "/v1/channels/{id}/watches/{watch_id}", tag = "watches", request_body = WatchPatchIn,
    params(WatchPath),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = WatchOut),
        TriggerErrors,
        (status = 422, description = "Invalid watch (`invalid_watch`); `errors` lists every problem", body = TriggerValidationBody),
    )
)]
async fn update_watch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<WatchPath>,
    AppJson(body): AppJson<WatchPatchIn>,
) -> Result<Response, ApiError> {
    let current = find(&state, &tenant, &path).await?;
    let mut spec = current.spec.clone();
    if let Some(condition) = body.condition {
        spec.condition = condition;
    }
    if let Some(rearm) = body.rearm {
        spec.rearm = rearm;
    }
    if let Some(template) = body.template {
        spec.template = template;
    }
    if let Some(cooldown) = body.cooldown_blocks {
        spec.cooldown_blocks = cooldown;
    }
    if let Some(every) = body.every_blocks {
        spec.every_blocks = every;
    }
    let edited = spec != current.spec;
    if edited {
        spec = match validated(&state, &current.channel_id, spec).await {
            Ok(spec) => spec,
            Err(refusal) => return Ok(refusal),
        };
    }
    let patch = WatchPatch {
        paused: body.paused,
        spec: edited.then_some(spec),
    };
    let watch = state
        .store
        .update_watch(&tenant, &current.channel_id, &current.id, &patch)
        .await?
        .ok_or(ApiError::NotFound("watch"))?;
    Ok(axum::Json(WatchOut::from(watch)).into_response())
}

/// Delete a watch and its subscribers' states. Alerts it already created stay.
#[utoipa::path(
    delete, path = "/v1/channels/{id}/watches/{watch_id}", tag = "watches",
    params(WatchPath),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        TriggerErrors,
    )
)]
async fn delete_watch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(path): Path<WatchPath>,
) -> Result<StatusCode, ApiError> {
    let (channel, watch) = path.ids()?;
    if state.store.delete_watch(&tenant, &channel, &watch).await? {
        tracing::info!(watch.id = %watch, "watch deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("watch"))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_watch, list_watches))
        .routes(routes!(get_watch, update_watch, delete_watch))
}
