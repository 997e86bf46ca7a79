//! Channels: one XMTP sender identity each. Creating a channel generates its secp256k1 wallet
//! key, which is stored only sealed under the master key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{paginate, AppJson, AppQuery, ListParams};
use super::tenants::validate_name;
use super::AppState;
use crate::crypto::ChannelWallet;
use crate::domain::{ChannelId, TenantId};
use crate::store::{Channel, ChannelPatch, NewChannel};
use crate::xmtp::channel::register_now;

/// How long channel creation waits for XMTP registration before answering without it.
const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn tenant_of(new: &NewChannel) -> TenantId {
    new.tenant.clone()
}

/// Longest channel description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelIn {
    /// Display name, 1 to 200 characters.
    #[schema(example = "Protocol alerts")]
    pub name: String,
    /// Optional description, up to 2000 characters.
    pub description: Option<String>,
}

/// Fields to change; omitted fields stay as they are, `"description": null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatchIn {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Distinguishes `"description": null` (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The channel's XMTP identity.
#[derive(Serialize, ToSchema)]
pub struct XmtpIdentityOut {
    /// EIP-55 address of the channel's own wallet; subscribers see messages from it.
    #[schema(example = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    pub address: String,
    /// XMTP inbox id, once the channel has registered on the network (normally at creation;
    /// if the network was unreachable then, a delivery worker registers it later).
    pub inbox_id: Option<String>,
    /// The channel's XMTP installation id (hex), once registered.
    pub installation_id: Option<String>,
    /// `registered`, or `pending` until the identity is on the network.
    #[schema(example = "registered")]
    pub status: &'static str,
    /// While `pending`: why the last registration attempt failed, naming the cause and the
    /// fix (e.g. an untrusted TLS certificate: set `xmtp.tls_ca_file`). Workers retry.
    pub registration_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelOut {
    #[schema(example = "ch_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub xmtp: XmtpIdentityOut,
    /// The hosted subscribe page for wallets (`/subscribe/{id}` under `public_url`).
    pub subscribe_url: String,
    /// An `<iframe>` snippet embedding that page on a website (who may embed it is
    /// `pages.frame_ancestors`).
    pub subscribe_embed: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ChannelOut {
    /// The response for `channel`, with its subscribe-page links.
    pub fn new(state: &AppState, channel: Channel) -> Self {
        let url = super::profile::subscribe_url(state, channel.id.as_str());
        let title = channel
            .name
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        ChannelOut {
            subscribe_embed: format!(
                "<iframe src=\"{url}\" title=\"Subscribe to {title}\" width=\"420\" height=\"640\" style=\"border:0\"></iframe>"
            ),
            subscribe_url: url,
            ..ChannelOut::from(channel)
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelOut>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Without the links, which need the configuration; see [`ChannelOut::new`].
impl From<Channel> for ChannelOut {
    fn from(c: Channel) -> Self {
        ChannelOut {
            id: c.id.to_string(),
            name: c.name,
            description: c.description,
            xmtp: XmtpIdentityOut {
                address: c.address.to_checksum(),
                status: if c.xmtp_inbox_id.is_some() {
                    "registered"
                } else {
                    "pending"
                },
                inbox_id: c.xmtp_inbox_id,
                installation_id: c.xmtp_installation_id,
                registration_error: c.xmtp_registration_error,
            },
            subscribe_url: String::new(),
            subscribe_embed: String::new(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn validate_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::validation(
            "invalid_description",
            "description must be at most 2000 characters",
        )),
        other => Ok(other),
    }
}

/// Loads a channel of `tenant`, answering 404 for a malformed id, a missing channel, or another
/// tenant's channel alike.
pub async fn load_channel(
    state: &AppState,
    tenant: &TenantId,
    raw_id: &str,
) -> Result<Channel, ApiError> {
    let id = ChannelId::parse(raw_id).ok_or(ApiError::NotFound("channel"))?;
    state
        .store
        .get_channel(tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("channel"))
}

/// Create a channel with a freshly generated wallet.
#[utoipa::path(
    post, path = "/v1/channels", tag = "channels", request_body = ChannelIn,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Channel created", body = ChannelOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
    )
)]
async fn create_channel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AppJson(body): AppJson<ChannelIn>,
) -> Result<(StatusCode, axum::Json<ChannelOut>), ApiError> {
    let name = validate_name(&body.name)?;
    let description = validate_description(body.description)?;
    let id = ChannelId::generate();
    let wallet = ChannelWallet::generate();
    let new = NewChannel {
        wallet_key_sealed: wallet.seal(&state.kek, id.as_str()),
        address: wallet.address.clone(),
        id,
        tenant,
        name,
        description,
    };
    let mut channel = state.store.create_channel(&new).await?;
    tracing::info!(channel.id = %channel.id, channel.address = %channel.address, "channel created");
    // Register the XMTP identity now, bounded so an unreachable network cannot hold the
    // request; on failure the channel is kept and a delivery worker registers it later.
    let register = register_now(&state.store, &state.kek, &state.xmtp, &channel.id);
    match tokio::time::timeout(REGISTER_TIMEOUT, register).await {
        Ok(Ok(())) => {
            if let Some(fresh) = state
                .store
                .get_channel(&tenant_of(&new), &channel.id)
                .await?
            {
                channel = fresh;
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(channel.id = %channel.id, error = %e, "XMTP registration deferred");
            channel.xmtp_registration_error = Some(e.to_string());
            state.wake.deliveries();
        }
        Err(_) => {
            tracing::warn!(channel.id = %channel.id, "XMTP registration timed out; deferred");
            state.wake.deliveries();
        }
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(ChannelOut::new(&state, channel)),
    ))
}

/// List channels, oldest first.
#[utoipa::path(
    get, path = "/v1/channels", tag = "channels", params(ListParams),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = ChannelList), (status = 401, description = "Missing or invalid API key", body = ErrorBody))
)]
async fn list_channels(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<ChannelList>, ApiError> {
    let (page, limit) = params.probe_page(|c| ChannelId::parse(c).is_some())?;
    let channels = state.store.list_channels(&tenant, &page).await?;
    let (items, next_cursor) = paginate(channels, limit, |c| c.id.to_string());
    Ok(axum::Json(ChannelList {
        items: items
            .into_iter()
            .map(|c| ChannelOut::new(&state, c))
            .collect(),
        next_cursor,
    }))
}

/// Get one channel.
#[utoipa::path(
    get, path = "/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = ChannelOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody))
)]
async fn get_channel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<ChannelOut>, ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    Ok(axum::Json(ChannelOut::new(&state, channel)))
}

/// Change a channel's name or description.
#[utoipa::path(
    patch, path = "/v1/channels/{id}", tag = "channels", request_body = ChannelPatchIn,
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = ChannelOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
    )
)]
async fn update_channel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppJson(body): AppJson<ChannelPatchIn>,
) -> Result<axum::Json<ChannelOut>, ApiError> {
    let id = ChannelId::parse(&id).ok_or(ApiError::NotFound("channel"))?;
    let patch = ChannelPatch {
        name: body.name.as_deref().map(validate_name).transpose()?,
        description: body.description.map(validate_description).transpose()?,
    };
    let channel = state
        .store
        .update_channel(&tenant, &id, &patch)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    Ok(axum::Json(ChannelOut::new(&state, channel)))
}

/// Delete a channel. Its pending deliveries are skipped; announcements stay readable.
#[utoipa::path(
    delete, path = "/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody))
)]
async fn delete_channel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ChannelId::parse(&id).ok_or(ApiError::NotFound("channel"))?;
    if state.store.delete_channel(&tenant, &id).await? {
        tracing::info!(channel.id = %id, "channel deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("channel"))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_channel, list_channels))
        .routes(routes!(get_channel, update_channel, delete_channel))
}
