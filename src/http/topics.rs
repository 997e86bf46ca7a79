//! Channel topics and per-subscriber topic preferences.
//!
//! A topic's `default` says what a subscriber who never chose gets: `on`, `off`, or
//! `required` (always, cannot be turned off). Names are short lowercase words so subscribers can
//! type them in chat (`stop <topic>`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::channels::load_channel;
use super::error::{ApiError, ErrorBody};
use super::extract::AppJson;
use super::subscribers::parse_address;
use super::AppState;
use crate::domain::Address;
use crate::store::{
    ConsentContext, ConsentSource, PreferenceOutcome, Topic, TopicMode, TopicPreference,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicIn {
    /// 1 to 32 of `a-z 0-9 _ -`.
    #[schema(example = "security")]
    pub name: String,
    pub description: Option<String>,
    /// `on` (default), `off` or `required`.
    pub default: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicPatch {
    pub description: Option<String>,
    /// `on`, `off` or `required`.
    pub default: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopicOut {
    pub name: String,
    pub description: Option<String>,
    pub default: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TopicList {
    pub items: Vec<TopicOut>,
}

#[derive(Serialize, ToSchema)]
pub struct PreferenceOut {
    pub topic: String,
    pub default: String,
    /// Whether this subscriber receives the topic now.
    pub enabled: bool,
    /// Whether that is the subscriber's own choice rather than the default.
    pub explicit: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PreferenceList {
    pub address: String,
    pub items: Vec<PreferenceOut>,
}

impl PreferenceList {
    /// An address's effective setting for every topic of the channel.
    pub fn new(address: &Address, prefs: Vec<TopicPreference>) -> Self {
        Self {
            address: address.to_string(),
            items: prefs
                .into_iter()
                .map(|p| PreferenceOut {
                    topic: p.topic.name,
                    default: p.topic.default_mode.as_str().into(),
                    enabled: p.enabled,
                    explicit: p.explicit,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceIn {
    pub enabled: bool,
}

impl From<Topic> for TopicOut {
    fn from(t: Topic) -> Self {
        Self {
            name: t.name,
            description: t.description,
            default: t.default_mode.as_str().into(),
            created_at: t.created_at,
        }
    }
}

/// Whether `name` is a valid topic name (also used by announcements and chat commands).
pub fn valid_topic_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn parse_mode(raw: &str) -> Result<TopicMode, ApiError> {
    TopicMode::parse(raw)
        .ok_or_else(|| ApiError::validation("invalid_default", "default is on, off or required"))
}

/// Create a topic.
#[utoipa::path(
    post, path = "/v1/channels/{id}/topics", tag = "topics", request_body = TopicIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 201, description = "Created", body = TopicOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody), (status = 409, description = "Name taken", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody))
)]
async fn create_topic(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(body): AppJson<TopicIn>,
) -> Result<(StatusCode, axum::Json<TopicOut>), ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    if !valid_topic_name(&body.name) {
        return Err(ApiError::validation(
            "invalid_topic_name",
            "1 to 32 of a-z 0-9 _ -",
        ));
    }
    let topic = Topic {
        name: body.name,
        description: body.description,
        default_mode: parse_mode(body.default.as_deref().unwrap_or("on"))?,
        created_at: Utc::now(),
    };
    if !state.store.create_topic(&channel.id, &topic).await? {
        return Err(ApiError::Conflict {
            code: "topic_exists",
            detail: format!("topic {} already exists", topic.name),
        });
    }
    Ok((StatusCode::CREATED, axum::Json(topic.into())))
}

/// List the channel's topics.
#[utoipa::path(
    get, path = "/v1/channels/{id}/topics", tag = "topics",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = TopicList), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody))
)]
async fn list_topics(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<TopicList>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let items = state.store.list_topics(&channel.id).await?;
    Ok(axum::Json(TopicList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Change a topic's description and default.
#[utoipa::path(
    put, path = "/v1/channels/{id}/topics/{name}", tag = "topics", request_body = TopicPatch,
    params(("id" = String, Path, description = "Channel id"), ("name" = String, Path, description = "Topic")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = TopicOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel or topic", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody))
)]
async fn update_topic(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, name)): Path<(String, String)>,
    AppJson(body): AppJson<TopicPatch>,
) -> Result<axum::Json<TopicOut>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let mode = parse_mode(&body.default)?;
    let topic = state
        .store
        .update_topic(&channel.id, &name, body.description.as_deref(), mode)
        .await?
        .ok_or(ApiError::NotFound("topic"))?;
    Ok(axum::Json(topic.into()))
}

/// Delete a topic and every subscriber's choice for it.
#[utoipa::path(
    delete, path = "/v1/channels/{id}/topics/{name}", tag = "topics",
    params(("id" = String, Path, description = "Channel id"), ("name" = String, Path, description = "Topic")),
    security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel or topic", body = ErrorBody))
)]
async fn delete_topic(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    if !state.store.delete_topic(&channel.id, &name).await? {
        return Err(ApiError::NotFound("topic"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A subscriber's topic preferences (effective, with defaults applied).
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribers/{address}/topics", tag = "topics",
    params(("id" = String, Path, description = "Channel id"), ("address" = String, Path, description = "0x address")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = PreferenceList), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody), (status = 422, description = "Invalid address", body = ErrorBody))
)]
async fn get_preferences(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, address)): Path<(String, String)>,
) -> Result<axum::Json<PreferenceList>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let address = parse_address(&address)?;
    let prefs = state.store.topic_preferences(&channel.id, &address).await?;
    Ok(axum::Json(PreferenceList::new(&address, prefs)))
}

/// Turn a topic on or off for a subscriber (logged with source `api`).
#[utoipa::path(
    put, path = "/v1/channels/{id}/subscribers/{address}/topics/{name}", tag = "topics", request_body = PreferenceIn,
    params(("id" = String, Path, description = "Channel id"), ("address" = String, Path, description = "0x address"), ("name" = String, Path, description = "Topic")),
    security(("api_key" = [])),
    responses((status = 204, description = "Saved"), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel or topic", body = ErrorBody), (status = 409, description = "The topic is required and cannot be turned off", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody))
)]
async fn put_preference(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, address, name)): Path<(String, String, String)>,
    AppJson(body): AppJson<PreferenceIn>,
) -> Result<StatusCode, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let address = parse_address(&address)?;
    let context = ConsentContext {
        source: ConsentSource::Api,
        evidence: None,
    };
    match state
        .store
        .set_topic_preference(&channel.id, &address, &name, body.enabled, &context)
        .await?
    {
        PreferenceOutcome::Set => Ok(StatusCode::NO_CONTENT),
        PreferenceOutcome::UnknownTopic => Err(ApiError::NotFound("topic")),
        PreferenceOutcome::Required => Err(ApiError::Conflict {
            code: "topic_required",
            detail: format!("topic {name} is required and cannot be turned off"),
        }),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_topic, list_topics))
        .routes(routes!(update_topic, delete_topic))
        .routes(routes!(get_preferences))
        .routes(routes!(put_preference))
}
