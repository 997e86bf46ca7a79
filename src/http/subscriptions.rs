//! Public wallet-signature subscribe (no API key): a subscriber asks for a Sign-In with
//! Ethereum challenge, signs it with their wallet, and posts it back.
//!
//! Checks, in order: the text is a challenge in herald's layout, for this server's domain and
//! this channel; the signature recovers the address it names; it has not expired; its nonce was
//! issued by herald for that channel and address and is spent now (single use, atomically). Only
//! then is the address subscribed, with the signed text and signature as consent evidence.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppQuery};
use super::subscribers::parse_address;
use super::AppState;
use crate::domain::siwe::{generate_nonce, verify_personal_sign, SiweError, SiweMessage};
use crate::domain::ChannelId;
use crate::store::{ConsentContext, ConsentSource, NewNonce, NonceUse, SubscribeOutcome};

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
}

/// Resolves a public channel id (deleted or unknown channels are 404) and applies the
/// per-channel public rate limit (429).
async fn live_channel(state: &AppState, raw: &str) -> Result<ChannelId, ApiError> {
    let id = ChannelId::parse(raw).ok_or(ApiError::NotFound("channel"))?;
    if !state.store.channel_is_live(&id).await? {
        return Err(ApiError::NotFound("channel"));
    }
    // No API key here, so the limit applies per channel (after the existence check, so random
    // ids cannot grow the limiter's table).
    state
        .rate_limiter
        .check(&format!("public:{}", id.as_str()))?;
    Ok(id)
}

/// Get a wallet-signature (SIWE) challenge to subscribe an address.
#[utoipa::path(
    get, path = "/v1/channels/{id}/subscribe-challenge", tag = "self-service",
    params(("id" = String, Path, description = "Channel id"), ChallengeParams),
    responses(
        (status = 200, description = "Challenge to sign", body = ChallengeOut),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 422, description = "Invalid address", body = ErrorBody),
        (status = 429, description = "Too many public requests for this channel", body = ErrorBody),
    )
)]
async fn challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ChallengeParams>,
) -> Result<axum::Json<ChallengeOut>, ApiError> {
    let channel = live_channel(&state, &id).await?;
    let address = parse_address(&params.address)?;
    let config = &state.selfservice;
    // Whole seconds: the text carries second precision and must match what is stored.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
    let expires_at = now + Duration::seconds(config.challenge_ttl_secs as i64);
    // The endpoint is public: drop long-expired challenges as new ones are made, so the table
    // stays bounded without a separate sweeper (indexed on `expires_at`).
    state
        .store
        .purge_expired_nonces(now - Duration::hours(1))
        .await?;
    let nonce = generate_nonce();
    let message = SiweMessage::new(
        &config.siwe_domain,
        &config.siwe_uri,
        &channel,
        &address,
        &nonce,
        now,
        expires_at,
    );
    state
        .store
        .create_nonce(&NewNonce {
            nonce: nonce.clone(),
            channel,
            address,
            issued_at: now,
            expires_at,
        })
        .await?;
    Ok(axum::Json(ChallengeOut {
        message: message.to_text(),
        nonce,
        expires_at,
    }))
}

/// Subscribe with a signed challenge (no API key).
///
/// Error codes: `invalid_siwe_message` (400), `siwe_domain_mismatch` / `siwe_channel_mismatch`
/// (400), `invalid_signature` / `signer_mismatch` (422), `challenge_expired` (422),
/// `unknown_nonce` (422), `nonce_already_used` (409).
#[utoipa::path(
    post, path = "/v1/channels/{id}/subscriptions", tag = "self-service", request_body = SignedSubscribeIn,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Subscribed (or re-activated)", body = SignedSubscribeOut),
        (status = 200, description = "Was already subscribed", body = SignedSubscribeOut),
        (status = 400, description = "Not a challenge for this server and channel", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 409, description = "The challenge was already used", body = ErrorBody),
        (status = 422, description = "Bad or foreign signature, expired or unknown challenge", body = ErrorBody),
        (status = 429, description = "Too many public requests for this channel", body = ErrorBody),
    )
)]
async fn subscribe_signed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AppJson(body): AppJson<SignedSubscribeIn>,
) -> Result<(StatusCode, axum::Json<SignedSubscribeOut>), ApiError> {
    let channel = live_channel(&state, &id).await?;
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
        return Err(ApiError::validation(
            "challenge_expired",
            "the challenge has expired",
        ));
    }
    match state.store.use_nonce(&message.nonce, now).await? {
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
        NonceUse::Consumed {
            channel: issued_channel,
            address: issued_address,
            expires_at,
        } => {
            if issued_channel != channel || issued_address != message.address {
                return Err(ApiError::bad_request(
                    "siwe_channel_mismatch",
                    "the challenge was issued for another channel or address",
                ));
            }
            if expires_at <= now {
                return Err(ApiError::validation(
                    "challenge_expired",
                    "the challenge has expired",
                ));
            }
        }
    }
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
    Ok((
        status,
        axum::Json(SignedSubscribeOut {
            channel_id: channel.as_str().to_owned(),
            address: message.address.to_string(),
            status: "active".into(),
        }),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(challenge))
        .routes(routes!(subscribe_signed))
}
