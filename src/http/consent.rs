//! The consent log (who subscribed or unsubscribed, when, how, with what evidence) and the
//! channel's chat welcome text.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::channels::load_channel;
use super::error::{ApiError, ErrorBody};
use super::extract::{check_cursor, check_limit, AppJson, AppQuery};
use super::subscribers::parse_address;
use super::AppState;
use crate::domain::Address;
use crate::store::ConsentRecord;

#[derive(Serialize, ToSchema)]
pub struct ConsentEntry {
    /// Time-ordered id; also the export cursor.
    pub id: String,
    pub address: String,
    /// `subscribe`, `unsubscribe`, `topic_on` or `topic_off`.
    pub action: String,
    /// The topic, for topic changes.
    pub topic: Option<String>,
    /// `api`, `dm`, `signature` or `import`.
    pub source: String,
    /// What proves it: for `signature` a JSON object with the signed message and signature
    /// (a topic change made on the subscribe page with the session that signature opened:
    /// `{"via": "subscriber_session", "session_expires_unix": …}`);
    /// for `dm` a JSON object with `xmtp_message_id` (hex, the id the subscriber's XMTP app
    /// shows), `sender_inbox_id`, `sender_wallet` and `node_sequence` (older entries
    /// hold `xmtp-message:<inbox>:<sequence>`); for `api`/`import` `request:<id>`.
    pub evidence: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ConsentRecord> for ConsentEntry {
    fn from(r: ConsentRecord) -> Self {
        Self {
            id: r.id,
            address: r.address.to_string(),
            action: r.action,
            topic: r.topic,
            source: r.source,
            evidence: r.evidence,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberConsent {
    pub address: String,
    /// `active`, `unsubscribed`, or `never` (no subscription on record).
    pub status: String,
    /// Oldest first.
    pub entries: Vec<ConsentEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentPage {
    pub items: Vec<ConsentEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default) or `ndjson` (one entry per line; the next cursor is in the
    /// `x-next-cursor` header).
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WelcomeText {
    /// Reply to a wallet's first chat message; `null` restores the server default.
    pub text: Option<String>,
}

/// One subscriber's consent history.
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribers/{address}/consent", tag = "self-service",
    params(("id" = String, Path, description = "Channel id"), ("address" = String, Path, description = "0x address")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = SubscriberConsent), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody), (status = 422, description = "Invalid address", body = ErrorBody))
)]
async fn subscriber_consent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, address)): Path<(String, String)>,
) -> Result<axum::Json<SubscriberConsent>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let address = parse_address(&address)?;
    let status = state.store.subscriber_status(&channel.id, &address).await?;
    let entries = state.store.consent_history(&channel.id, &address).await?;
    Ok(axum::Json(SubscriberConsent {
        address: address.to_string(),
        status: status.unwrap_or_else(|| "never".into()),
        entries: entries.into_iter().map(Into::into).collect(),
    }))
}

/// Export the channel's consent log in time order (JSON pages or NDJSON).
#[utoipa::path(
    get, path = "/v1/channels/{id}/consent", tag = "self-service",
    params(("id" = String, Path, description = "Channel id"), ExportParams),
    security(("api_key" = [])),
    responses((status = 200, description = "A page of the log", body = ConsentPage), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody))
)]
async fn export_consent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let limit = check_limit(params.limit)?;
    check_cursor(params.cursor.as_deref(), is_consent_id)?;
    let ndjson = match params.format.as_deref() {
        None | Some("json") => false,
        Some("ndjson") => true,
        Some(other) => {
            return Err(ApiError::validation(
                "invalid_format",
                format!("unknown format {other}"),
            ))
        }
    };
    // One extra row tells whether another page exists.
    let mut rows = state
        .store
        .consent_export(&channel.id, params.cursor.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    let items: Vec<ConsentEntry> = rows.into_iter().map(Into::into).collect();
    if !ndjson {
        return Ok(axum::Json(ConsentPage { items, next_cursor }).into_response());
    }
    let mut body = String::new();
    for item in &items {
        body.push_str(&serde_json::to_string(item).map_err(|e| ApiError::Internal(Box::new(e)))?);
        body.push('\n');
    }
    let mut response = ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    if let Some(cursor) = next_cursor.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

/// Whether `id` has the shape of a consent log id: a ULID, or for batch entries a ULID and the
/// entry's address joined by `:`.
fn is_consent_id(id: &str) -> bool {
    let (time, address) = match id.split_once(':') {
        Some((time, address)) => (time, Some(address)),
        None => (id, None),
    };
    ulid::Ulid::from_string(time).is_ok() && address.is_none_or(|a| Address::parse(a).is_ok())
}

/// The channel's welcome text for first chat contacts.
#[utoipa::path(
    get, path = "/v1/channels/{id}/welcome", tag = "self-service",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK (`text` null: the server default applies)", body = WelcomeText), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody))
)]
async fn get_welcome(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<WelcomeText>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    let text = state.store.welcome_text(&channel.id).await?;
    Ok(axum::Json(WelcomeText { text }))
}

/// Set (or clear) the channel's welcome text.
#[utoipa::path(
    put, path = "/v1/channels/{id}/welcome", tag = "self-service", request_body = WelcomeText,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = WelcomeText), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such channel", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody))
)]
async fn put_welcome(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(body): AppJson<WelcomeText>,
) -> Result<axum::Json<WelcomeText>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    if let Some(text) = &body.text {
        if text.trim().is_empty() || text.len() > 2000 {
            return Err(ApiError::validation(
                "invalid_welcome_text",
                "1 to 2000 bytes",
            ));
        }
    }
    state
        .store
        .set_welcome_text(&channel.id, body.text.as_deref())
        .await?;
    Ok(axum::Json(body))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subscriber_consent))
        .routes(routes!(export_consent))
        .routes(routes!(get_welcome, put_welcome))
}
