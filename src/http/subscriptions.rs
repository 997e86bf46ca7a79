//! Public wallet-signature subscribe (no API key): a subscriber asks for a Sign-In with
//! Ethereum challenge, signs it with their wallet, and posts it back.
//!
//! Checks, in order: the text is a challenge in herald's layout, for this server's domain and
//! this channel; the signature recovers the address it names; it has not expired; the channel
//! owner's subscriber quota has room; its nonce was issued by herald for that channel and
//! address *with exactly this text* (stored with the nonce, compared byte for byte) and is
//! spent now (single use, atomically). Only then is the address subscribed, with the signed
//! text and signature as consent evidence.
//!
//! Both endpoints are keyless, so they are limited per client address ([`PublicClient`]), and
//! issuing is capped per channel and reused per address, so a flood can neither lock out
//! other subscribers nor grow the nonce table without bound.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppQuery};
use super::quotas;
use super::rate_limit::{refuse, PublicClient};
use super::subscribers::parse_address;
use super::AppState;
use crate::domain::siwe::{generate_nonce, verify_personal_sign, SiweError, SiweMessage};
use crate::domain::{ChannelId, TenantId};
use crate::store::{
    ConsentContext, ConsentSource, IssuedNonce, NewNonce, NonceIssue, NonceUse, SubscribeOutcome,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChallengeParams {
    /// The wallet address that will sign.
    pub address: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChallengeOut {
    /// EIP-4361 message to sign with `personal_sign`, verbatim.
    pub message: String,
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedSubscribeIn {
    /// The challenge text exactly as issued.
    pub message: String,
    /// 65-byte `personal_sign` signature, hex (0x-prefixed or not).
    pub signature: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignedSubscribeOut {
    pub channel_id: String,
    /// Lowercase address that signed.
    pub address: String,
    /// Always `active`.
    pub status: String,
    /// Subscriber session token (`Authorization: Bearer …`) for this address's own topic
    /// preferences on this channel (`/v1/channels/{id}/me/topics`), valid until
    /// `session_expires_at`.
    pub session_token: String,
    pub session_expires_at: DateTime<Utc>,
}

/// Resolves a public channel id to the channel and its tenant (deleted or unknown channels
/// are 404).
pub(super) async fn live_channel(
    state: &AppState,
    raw: &str,
) -> Result<(ChannelId, TenantId), ApiError> {
    let id = ChannelId::parse(raw).ok_or(ApiError::NotFound("channel"))?;
    let tenant = state
        .store
        .live_channel_tenant(&id)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    Ok((id, tenant))
}

/// Get a wallet-signature (SIWE) challenge to subscribe an address.
///
/// An address that already has an unused challenge with at least half its lifetime left gets
/// that one again. Limits: `client_rate_limited` (per client address) and
/// `too_many_challenges` (unused challenges per channel), both 429 with `Retry-After`.
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribe-challenge", tag = "self-service",
    params(("id" = String, Path, description = "Channel id"), ChallengeParams),
    responses(
        (status = 200, description = "Challenge to sign", body = ChallengeOut),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 422, description = "Invalid address", body = ErrorBody),
        (status = 429, description = "Too many requests from this client, or too many unused challenges for this channel", body = ErrorBody),
    )
)]
async fn challenge(
    State(state): State<AppState>,
    _client: PublicClient,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ChallengeParams>,
) -> Result<axum::Json<ChallengeOut>, ApiError> {
    let (channel, tenant) = live_channel(&state, &id).await?;
    let address = parse_address(&params.address)?;
    let config = &state.selfservice;
    // Whole seconds: the text carries second precision.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
    let ttl = Duration::seconds(config.challenge_ttl_secs as i64);
    // The endpoint is public: drop long-expired challenges as new ones are made, so the table
    // stays bounded without a separate sweeper (indexed on `expires_at`).
    state
        .store
        .purge_expired_nonces(now - Duration::hours(1))
        .await?;
    let nonce = generate_nonce();
    let expires_at = now + ttl;
    let name = state
        .store
        .get_channel(&tenant, &channel)
        .await?
        .ok_or(ApiError::NotFound("channel"))?
        .name;
    let message = SiweMessage::new(
        &config.siwe_domain,
        &config.siwe_uri,
        &channel,
        &address,
        &nonce,
        now,
        expires_at,
    )
    .with_channel_name(&name)
    .to_text();
    let new = NewNonce {
        nonce: nonce.clone(),
        channel,
        address,
        issued_at: now,
        expires_at,
        message: message.clone(),
    };
    // An address with an open challenge gets it again (so repeated requests store nothing);
    // check and insert are atomic, also across concurrent requests.
    match state
        .store
        .issue_nonce(&new, now + ttl / 2, config.max_outstanding_challenges)
        .await?
    {
        NonceIssue::Issued => {}
        NonceIssue::Existing(existing) => {
            return Ok(axum::Json(ChallengeOut {
                message: existing.message,
                nonce: existing.nonce,
                expires_at: existing.expires_at,
            }))
        }
        NonceIssue::ChannelFull => {
            return Err(refuse(
                "challenges_per_channel",
                "too_many_challenges",
                "this channel has too many unanswered subscribe challenges; retry later",
                60,
            ))
        }
    }
    Ok(axum::Json(ChallengeOut {
        message,
        nonce,
        expires_at,
    }))
}

/// Subscribe with a signed challenge (no API key).
///
/// The message must be the challenge text exactly as issued for its nonce. Error codes:
/// `invalid_siwe_message` (400), `siwe_domain_mismatch` / `siwe_channel_mismatch` /
/// `siwe_message_mismatch` (400), `invalid_signature` / `signer_mismatch` (422),
/// `challenge_expired` (422), `unknown_nonce` (422), `nonce_already_used` (409),
/// `client_rate_limited` / `quota_exceeded` (429).
#[utoipa::path(
    post, path = "/v1/channels/{id}/subscriptions", tag = "self-service", request_body = SignedSubscribeIn,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Subscribed (or re-activated)", body = SignedSubscribeOut),
        (status = 200, description = "Was already subscribed", body = SignedSubscribeOut),
        (status = 400, description = "Not the challenge issued for this server, channel and nonce", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 409, description = "The challenge was already used", body = ErrorBody),
        (status = 422, description = "Bad or foreign signature, expired or unknown challenge", body = ErrorBody),
        (status = 429, description = "Too many requests from this client, or the channel owner's subscriber quota is reached", body = ErrorBody),
    )
)]
async fn subscribe_signed(
    State(state): State<AppState>,
    _client: PublicClient,
    Path(id): Path<String>,
    AppJson(body): AppJson<SignedSubscribeIn>,
) -> Result<(StatusCode, axum::Json<SignedSubscribeOut>), ApiError> {
    let (channel, tenant) = live_channel(&state, &id).await?;
    let message = SiweMessage::parse(&body.message)
        .map_err(|e| ApiError::bad_request("invalid_siwe_message", e.to_string()))?;
    if message.domain != state.selfservice.siwe_domain {
        return Err(ApiError::bad_request(
            "siwe_domain_mismatch",
            format!("the challenge is for {}, not this server", message.domain),
        ));
    }
    if message.channel != channel.as_str() {
        return Err(ApiError::bad_request(
            "siwe_channel_mismatch",
            "the challenge was issued for another channel",
        ));
    }
    verify_personal_sign(&body.message, &body.signature, &message.address).map_err(
        |e| match e {
            SiweError::WrongSigner { .. } => ApiError::validation("signer_mismatch", e.to_string()),
            other => ApiError::validation("invalid_signature", other.to_string()),
        },
    )?;
    let now = Utc::now();
    if message.expires_at <= now {
        return Err(expired());
    }
    // Before the nonce is spent, so a refused subscriber can still use the challenge later.
    quotas::ensure_room_for(&state, &tenant, &channel, &message.address).await?;
    spend_nonce(&state, &channel, &message, &body.message, now).await?;
    let evidence = serde_json::json!({"message": body.message, "signature": body.signature});
    let context = ConsentContext {
        source: ConsentSource::Signature,
        evidence: Some(evidence.to_string()),
    };
    let outcome = state
        .store
        .subscribe_with_consent(&channel, &message.address, &context)
        .await?;
    let status = match outcome {
        SubscribeOutcome::AlreadyActive => StatusCode::OK,
        SubscribeOutcome::Added | SubscribeOutcome::Reactivated => StatusCode::CREATED,
    };
    let session_expires_at = now + Duration::seconds(state.selfservice.session_ttl_secs as i64);
    let session_token = super::subscriber_session::issue(
        &state.kek,
        &channel,
        &message.address,
        session_expires_at,
    );
    Ok((
        status,
        axum::Json(SignedSubscribeOut {
            channel_id: channel.as_str().to_owned(),
            address: message.address.to_string(),
            status: "active".into(),
            session_token,
            session_expires_at,
        }),
    ))
}

/// Spends the message's nonce if herald issued exactly `text` with it for this channel and
/// address. Challenges issued before texts were stored are compared with their text rebuilt
/// from the row (the same fields and configuration wrote it).
async fn spend_nonce(
    state: &AppState,
    channel: &ChannelId,
    message: &SiweMessage,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    // Checked before anything is spent: a refused text (or a challenge presented on the
    // wrong channel or by another address) leaves the challenge usable for its subscriber.
    // A challenge with a stored text is compared in the spending statement itself; one from
    // before texts were stored is compared here with its text rebuilt from the row.
    if let Some(issued) = state.store.issued_nonce(&message.nonce).await? {
        if !issued.used {
            if issued.channel != *channel || issued.address != message.address {
                return Err(channel_mismatch());
            }
            if issued.message.is_none()
                && !matches_rebuilt(state, &message.nonce, &issued, text).await?
            {
                return Err(text_mismatch());
            }
        }
    }
    let (issued_channel, address, issued_at, expires_at, stored) =
        match state.store.use_nonce(&message.nonce, text, now).await? {
            NonceUse::Replayed => {
                return Err(ApiError::Conflict {
                    code: "nonce_already_used",
                    detail: "this challenge was already used; request a new one".into(),
                })
            }
            NonceUse::Unknown => {
                return Err(ApiError::validation(
                    "unknown_nonce",
                    "herald did not issue this challenge",
                ))
            }
            NonceUse::Mismatch => return Err(text_mismatch()),
            NonceUse::Consumed {
                channel,
                address,
                issued_at,
                expires_at,
                message,
            } => (channel, address, issued_at, expires_at, message),
        };
    // Rechecked after spending (a row cannot change between the two reads, but the spend is
    // what counts).
    if issued_channel != *channel || address != message.address {
        return Err(channel_mismatch());
    }
    if stored.is_none() {
        let issued = IssuedNonce {
            channel: issued_channel,
            address,
            issued_at,
            expires_at,
            message: None,
            used: true,
        };
        if !matches_rebuilt(state, &message.nonce, &issued, text).await? {
            return Err(text_mismatch());
        }
    }
    if expires_at <= now {
        return Err(expired());
    }
    Ok(())
}

/// Whether `text` is the text herald issued with a challenge stored before texts were (the
/// same fields and configuration wrote it): such a challenge named the channel by id alone, or,
/// issued since statements name the channel, by its name as well.
async fn matches_rebuilt(
    state: &AppState,
    nonce: &str,
    issued: &IssuedNonce,
    text: &str,
) -> Result<bool, ApiError> {
    let config = &state.selfservice;
    let rebuilt = SiweMessage::new(
        &config.siwe_domain,
        &config.siwe_uri,
        &issued.channel,
        &issued.address,
        nonce,
        issued.issued_at,
        issued.expires_at,
    );
    if rebuilt.to_text() == text {
        return Ok(true);
    }
    let Some(tenant) = state.store.live_channel_tenant(&issued.channel).await? else {
        return Ok(false);
    };
    let named = state
        .store
        .get_channel(&tenant, &issued.channel)
        .await?
        .map(|c| rebuilt.with_channel_name(&c.name).to_text());
    Ok(named.as_deref() == Some(text))
}

fn channel_mismatch() -> ApiError {
    ApiError::bad_request(
        "siwe_channel_mismatch",
        "the challenge was issued for another channel or address",
    )
}

fn text_mismatch() -> ApiError {
    ApiError::bad_request(
        "siwe_message_mismatch",
        "the signed text is not the challenge herald issued with this nonce; sign it exactly as issued",
    )
}

fn expired() -> ApiError {
    ApiError::validation("challenge_expired", "the challenge has expired")
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(challenge))
        .routes(routes!(subscribe_signed))
}
