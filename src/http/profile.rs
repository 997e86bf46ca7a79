//! Public, keyless reads the subscribe page needs: a channel's profile (name, description,
//! topics, XMTP address) and whether an address is on XMTP at all, asked before the wallet
//! subscribes so that nobody subscribes to deliveries that would all end `not_on_xmtp`.
//!
//! Both are limited per client like the other public endpoints ([`PublicClient`]).

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::AppQuery;
use super::rate_limit::PublicClient;
use super::subscribers::parse_address;
use super::subscriptions::{live_channel, ChallengeParams};
use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct PublicTopic {
    pub name: String,
    pub description: Option<String>,
    /// `on`, `off` or `required` (always on).
    pub default: String,
}

/// What anyone may know about a channel: what the subscribe page shows.
#[derive(Serialize, ToSchema)]
pub struct ChannelProfile {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// EIP-55 address messages come from; a wallet may also subscribe by sending it
    /// `SUBSCRIBE` from any XMTP app.
    pub xmtp_address: String,
    pub topics: Vec<PublicTopic>,
    /// The hosted subscribe page.
    pub subscribe_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct Reachability {
    /// Lowercase address asked about.
    pub address: String,
    /// Whether the address has an XMTP inbox on herald's network (if not, deliveries to it
    /// end `skipped: not_on_xmtp` until it opens one, e.g. by signing in to an XMTP app).
    pub on_xmtp: bool,
}

/// The public URL of a channel's subscribe page, from `selfservice.siwe_uri` (which
/// `public_url` sets).
pub fn subscribe_url(state: &AppState, channel_id: &str) -> String {
    format!(
        "{}/subscribe/{channel_id}",
        state.selfservice.siwe_uri.trim_end_matches('/')
    )
}

/// A channel's public profile (no API key): name, description, topics, XMTP address.
#[utoipa::path(
    get, path = "/v1/channels/{id}/profile", tag = "self-service",
    params(("id" = String, Path, description = "Channel id")),
    responses((status = 200, description = "OK", body = ChannelProfile), (status = 404, description = "No such channel", body = ErrorBody), (status = 429, description = "Too many requests from this client", body = ErrorBody))
)]
async fn get_profile(
    State(state): State<AppState>,
    _client: PublicClient,
    Path(id): Path<String>,
) -> Result<axum::Json<ChannelProfile>, ApiError> {
    let (channel, tenant) = live_channel(&state, &id).await?;
    let found = state
        .store
        .get_channel(&tenant, &channel)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let topics = state.store.list_topics(&channel).await?;
    Ok(axum::Json(ChannelProfile {
        id: channel.to_string(),
        name: found.name,
        description: found.description,
        xmtp_address: found.address.to_checksum(),
        topics: topics
            .into_iter()
            .map(|t| PublicTopic {
                name: t.name,
                description: t.description,
                default: t.default_mode.as_str().into(),
            })
            .collect(),
        subscribe_url: subscribe_url(&state, channel.as_str()),
    }))
}

/// Whether an address is on XMTP (no API key), asked of herald's XMTP network.
#[utoipa::path(
    get, path = "/v1/channels/{id}/reachability", tag = "self-service",
    params(("id" = String, Path, description = "Channel id"), ChallengeParams),
    responses(
        (status = 200, description = "OK", body = Reachability),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 422, description = "Invalid address", body = ErrorBody),
        (status = 429, description = "Too many requests from this client", body = ErrorBody),
        (status = 503, description = "The XMTP network did not answer", body = ErrorBody),
    )
)]
async fn get_reachability(
    State(state): State<AppState>,
    _client: PublicClient,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ChallengeParams>,
) -> Result<axum::Json<Reachability>, ApiError> {
    live_channel(&state, &id).await?;
    let address = parse_address(&params.address)?;
    let on_xmtp = state.xmtp.has_inbox(address.as_str()).await.map_err(|e| {
        tracing::warn!(error = %e, "XMTP inbox lookup failed");
        ApiError::Unavailable
    })?;
    Ok(axum::Json(Reachability {
        address: address.to_string(),
        on_xmtp,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_profile))
        .routes(routes!(get_reachability))
}
