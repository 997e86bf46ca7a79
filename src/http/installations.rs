//! Rotating a channel's XMTP installation (`POST /v1/channels/{id}/rotate-installation`).
//!
//! The rotation runs in its own task: a client that gives up, or the request timeout, does not
//! stop it halfway. The answer is 200 with the result when it finishes within
//! [`ROTATE_WAIT`], otherwise 202 `running`; the channel's `xmtp.installation_id` shows the new
//! installation once it is in charge.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::channels::load_channel;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::xmtp::channel::ChannelXmtpError;
use crate::xmtp::installation::{rotate_installation, Rotated};

/// How long the request waits for the rotation before answering 202.
const ROTATE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The outcome of an installation rotation.
#[derive(Serialize, ToSchema)]
pub struct RotationOut {
    /// `rotated`, or `running` when it had not finished when the request answered.
    #[schema(example = "rotated")]
    pub status: &'static str,
    /// The channel's XMTP inbox id (unchanged by a rotation).
    pub inbox_id: Option<String>,
    /// The new installation id (hex).
    pub installation_id: Option<String>,
    /// The installation id the channel used before (hex).
    pub previous_installation_id: Option<String>,
    /// Installation ids revoked from the inbox (hex).
    pub revoked_installation_ids: Vec<String>,
    /// DMs the new installation joined.
    pub dms: Option<usize>,
}

impl From<Rotated> for RotationOut {
    fn from(r: Rotated) -> Self {
        RotationOut {
            status: "rotated",
            inbox_id: Some(r.inbox_id),
            installation_id: Some(r.installation_id),
            previous_installation_id: Some(r.previous_installation_id),
            revoked_installation_ids: r.revoked,
            dms: Some(r.dms),
        }
    }
}

/// Replace the channel's XMTP installation with a new one and revoke the old one.
///
/// The new installation joins every DM of the channel (subscribers keep the same
/// conversation), becomes the one the channel sends with, and every other installation of the
/// channel's inbox is revoked. The channel's sender lease is held throughout: deliveries wait.
#[utoipa::path(
    post, path = "/v1/channels/{id}/rotate-installation", tag = "channels",
    params(("id" = String, Path, description = "Channel id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Rotated", body = RotationOut),
        (status = 202, description = "Still running; the channel's installation_id changes when done", body = RotationOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 409, description = "`channel_busy`: a worker is sending for the channel right now, or `channel_not_registered`; retry later", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the XMTP network failed; nothing changed or a retry finishes the rotation", body = ErrorBody),
    )
)]
async fn rotate_channel_installation(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<RotationOut>), ApiError> {
    let channel = load_channel(&state, &tenant, &id).await?;
    if channel.xmtp_inbox_id.is_none() {
        return Err(ApiError::Conflict {
            code: "channel_not_registered",
            detail: "the channel is not registered on XMTP yet; retry once it is".into(),
        });
    }
    let (store, kek, xmtp) = (state.store.clone(), state.kek.clone(), state.xmtp.clone());
    let task =
        tokio::spawn(async move { rotate_installation(&store, &kek, &xmtp, &channel.id).await });
    let outcome = match tokio::time::timeout(ROTATE_WAIT, task).await {
        Err(_) => {
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(RotationOut {
                    status: "running",
                    inbox_id: None,
                    installation_id: None,
                    previous_installation_id: None,
                    revoked_installation_ids: Vec::new(),
                    dms: None,
                }),
            ))
        }
        Ok(joined) => joined.map_err(|e| ApiError::Internal(Box::new(e)))?,
    };
    match outcome {
        Ok(rotated) => {
            state.wake.deliveries();
            Ok((StatusCode::OK, axum::Json(rotated.into())))
        }
        Err(ChannelXmtpError::Busy) => Err(ApiError::Conflict {
            code: "channel_busy",
            detail: "a worker holds the channel's sender lease; retry in a few seconds".into(),
        }),
        Err(ChannelXmtpError::Gone) => Err(ApiError::NotFound("channel")),
        Err(ChannelXmtpError::Store(e)) => Err(e.into()),
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "installation rotation stopped; a retry finishes it");
            Err(ApiError::Unavailable)
        }
        Err(e) => Err(ApiError::Internal(Box::new(e))),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rotate_channel_installation))
}
