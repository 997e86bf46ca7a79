//! Subscriber sessions: a short-lived token a wallet-signature subscribe returns, with which
//! that wallet (and nobody else) reads and changes its own topic preferences from the
//! subscribe page, without an API key and without signing again for every switch.
//!
//! The token is stateless: `hsub.<channel>.<address>.<expiry>.<mac>`, the MAC an HMAC-SHA256
//! under a key derived from the master key, so any replica verifies it and nothing is stored.
//! It cannot be revoked before it expires (`selfservice.session_ttl_secs`, an hour by
//! default); it grants nothing but the preferences of one address on one channel.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::AppJson;
use super::rate_limit::PublicClient;
use super::topics::{PreferenceIn, PreferenceList};
use super::AppState;
use crate::crypto::MasterKey;
use crate::domain::{Address, ChannelId};
use crate::store::{ConsentContext, ConsentSource, PreferenceOutcome};

const PREFIX: &str = "hsub";

/// The label under which the token key is derived from the master key.
const KEY_LABEL: &str = "subscriber-session-v1";

/// Issues a session token for `address` on `channel`, valid until `expires_at`.
pub fn issue(
    kek: &MasterKey,
    channel: &ChannelId,
    address: &Address,
    expires_at: DateTime<Utc>,
) -> String {
    let body = format!("{PREFIX}.{channel}.{address}.{}", expires_at.timestamp());
    let mac = hex::encode(mac(kek, &body).finalize().into_bytes());
    format!("{body}.{mac}")
}

/// The address a token was issued to, if it is genuine, unexpired and for `channel`.
pub fn verify(
    kek: &MasterKey,
    channel: &ChannelId,
    token: &str,
    now: DateTime<Utc>,
) -> Option<Address> {
    let (body, tag) = token.rsplit_once('.')?;
    let tag = hex::decode(tag).ok()?;
    mac(kek, body).verify_slice(&tag).ok()?;
    let mut parts = body.split('.');
    let (prefix, issued_channel, address, expiry) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != PREFIX || parts.next().is_some() || issued_channel != channel.as_str() {
        return None;
    }
    let expiry: i64 = expiry.parse().ok()?;
    (now.timestamp() < expiry).then_some(())?;
    Address::parse(address).ok()
}

fn mac(kek: &MasterKey, body: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&kek.derive(KEY_LABEL)).expect("HMAC takes any key length");
    mac.update(body.as_bytes());
    mac
}

/// The bearer token of a subscriber session, not yet checked against a channel.
pub struct SessionToken(String);

impl FromRequestParts<AppState> for SessionToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.starts_with("hsub."))
            .map(|t| SessionToken(t.trim().to_owned()))
            .ok_or_else(invalid_session)
    }
}

/// 401 `unauthorized`: the page then asks the wallet to sign again.
fn invalid_session() -> ApiError {
    ApiError::Unauthorized
}

/// The channel and the session's address, or 401 (also for a token of another channel).
fn session_address(
    state: &AppState,
    raw: &str,
    token: &SessionToken,
) -> Result<(ChannelId, Address), ApiError> {
    let channel = ChannelId::parse(raw).ok_or_else(invalid_session)?;
    let address = verify(&state.kek, &channel, &token.0, Utc::now()).ok_or_else(invalid_session)?;
    Ok((channel, address))
}

/// The session's own topic preferences (effective, with defaults applied).
#[utoipa::path(
    get, path = "/v1/channels/{id}/me/topics", tag = "self-service",
    params(("id" = String, Path, description = "Channel id")),
    security(("subscriber_session" = [])),
    responses((status = 200, description = "OK", body = PreferenceList), (status = 401, description = "Missing, expired or foreign subscriber session", body = ErrorBody), (status = 429, description = "Too many requests from this client", body = ErrorBody))
)]
async fn get_my_preferences(
    State(state): State<AppState>,
    _client: PublicClient,
    token: SessionToken,
    Path(id): Path<String>,
) -> Result<axum::Json<PreferenceList>, ApiError> {
    let (channel, address) = session_address(&state, &id, &token)?;
    let prefs = state.store.topic_preferences(&channel, &address).await?;
    Ok(axum::Json(PreferenceList::new(&address, prefs)))
}

/// Turn a topic on or off for the session's own address (logged with source `signature`:
/// the session was opened by a wallet signature).
#[utoipa::path(
    put, path = "/v1/channels/{id}/me/topics/{name}", tag = "self-service", request_body = PreferenceIn,
    params(("id" = String, Path, description = "Channel id"), ("name" = String, Path, description = "Topic")),
    security(("subscriber_session" = [])),
    responses((status = 204, description = "Saved"), (status = 401, description = "Missing, expired or foreign subscriber session", body = ErrorBody), (status = 404, description = "No such topic", body = ErrorBody), (status = 409, description = "The topic is required and cannot be turned off", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody), (status = 429, description = "Too many requests from this client", body = ErrorBody))
)]
async fn put_my_preference(
    State(state): State<AppState>,
    _client: PublicClient,
    token: SessionToken,
    Path((id, name)): Path<(String, String)>,
    AppJson(body): AppJson<PreferenceIn>,
) -> Result<StatusCode, ApiError> {
    let (channel, address) = session_address(&state, &id, &token)?;
    // The session token itself is a bearer credential and stays out of the log.
    let expires = token
        .0
        .split('.')
        .nth(3)
        .and_then(|t| t.parse::<i64>().ok());
    let evidence =
        serde_json::json!({"via": "subscriber_session", "session_expires_unix": expires});
    let context = ConsentContext {
        source: ConsentSource::Signature,
        evidence: Some(evidence.to_string()),
    };
    match state
        .store
        .set_topic_preference(&channel, &address, &name, body.enabled, &context)
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
        .routes(routes!(get_my_preferences))
        .routes(routes!(put_my_preference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_channel_until_it_expires() {
        let kek = MasterKey::generate();
        let channel = ChannelId::generate();
        let other = ChannelId::generate();
        let address = Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        let now = Utc::now();
        let token = issue(&kek, &channel, &address, now + chrono::Duration::minutes(5));
        assert_eq!(verify(&kek, &channel, &token, now), Some(address.clone()));
        assert_eq!(verify(&kek, &other, &token, now), None, "another channel");
        assert_eq!(
            verify(&kek, &channel, &token, now + chrono::Duration::minutes(6)),
            None,
            "expired"
        );
        assert_eq!(
            verify(&MasterKey::generate(), &channel, &token, now),
            None,
            "another key"
        );
        let forged = token.replace(
            address.as_str(),
            "0x0000000000000000000000000000000000000001",
        );
        assert_eq!(
            verify(&kek, &channel, &forged, now),
            None,
            "another address"
        );
    }
}
