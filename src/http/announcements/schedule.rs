//! Scheduling and cancel: the `send_at` check of a new announcement, and
//! `POST /v1/announcements/{id}/cancel`.
//!
//! What cancel guarantees: when it answers 200, every delivery that was pending is `skipped`
//! with reason `cancelled` (one statement) and none of them is claimed any more. A sender that
//! claimed some of them before checks, just before publishing a batch, that its rows are still
//! pending, and publishes none of the batch otherwise. So the only messages that may still go
//! out after the answer are those of a batch whose publish had already begun (at most one
//! batch per channel, `xmtp.batch_size` messages); they are recorded `delivered`, as sent.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};

use super::dto::AnnouncementOut;
use super::eta;
use crate::domain::AnnouncementId;
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::store::CancelOutcome;

/// How far ahead an announcement may be scheduled.
pub const MAX_SCHEDULE: chrono::Duration = chrono::Duration::days(366);

/// Parses and bounds a requested `send_at` (RFC 3339, in the future, at most [`MAX_SCHEDULE`]
/// ahead of `now`).
pub(super) fn check_send_at(
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| {
            ApiError::validation(
                "invalid_send_at",
                format!("send_at must be an RFC 3339 timestamp ({e})"),
            )
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Err(ApiError::validation(
            "invalid_send_at",
            "send_at must be in the future",
        ));
    }
    if at > now + MAX_SCHEDULE {
        return Err(ApiError::validation(
            "invalid_send_at",
            "send_at must be at most 366 days ahead",
        ));
    }
    Ok(Some(at))
}

/// Cancel an announcement: its pending deliveries end `skipped` (reason `cancelled`); what
/// was sent stays sent. Answers the announcement, now `cancelled`. A batch whose publish had
/// already begun may still go out (at most one per channel), and is counted `delivered`.
#[utoipa::path(
    post, path = "/v1/announcements/{id}/cancel", tag = "announcements",
    params(("id" = String, Path, description = "Announcement id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Cancelled", body = AnnouncementOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 409, description = "`announcement_finished`: nothing is pending any more (completed or already cancelled)", body = ErrorBody),
    )
)]
pub(super) async fn cancel_announcement(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<AnnouncementOut>, ApiError> {
    let id = AnnouncementId::parse(&id).ok_or(ApiError::NotFound("announcement"))?;
    match state.store.cancel_announcement(&tenant, &id).await? {
        CancelOutcome::NotFound => return Err(ApiError::NotFound("announcement")),
        CancelOutcome::Finished => {
            return Err(ApiError::Conflict {
                code: "announcement_finished",
                detail: "nothing of this announcement is pending".into(),
            })
        }
        CancelOutcome::Cancelled(n) => {
            metrics::counter!("herald_deliveries_cancelled_total").increment(n);
            tracing::info!(announcement.id = %id, deliveries = n, "announcement cancelled");
        }
    }
    let announcement = state
        .store
        .get_announcement(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("announcement"))?;
    let progress = eta::progress(&state, &announcement).await?;
    Ok(axum::Json(AnnouncementOut {
        topic: progress.topic,
        eta_seconds: progress.eta_seconds,
        ..announcement.into()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_at_must_be_ahead_and_within_a_year() {
        let now = Utc::now();
        assert_eq!(check_send_at(None, now).unwrap(), None);
        let soon = (now + chrono::Duration::minutes(5)).to_rfc3339();
        assert!(check_send_at(Some(&soon), now).unwrap().is_some());
        for bad in [
            "tomorrow".to_owned(),
            (now - chrono::Duration::seconds(1)).to_rfc3339(),
            (now + chrono::Duration::days(367)).to_rfc3339(),
        ] {
            let err = check_send_at(Some(&bad), now).unwrap_err();
            assert_eq!(err.code(), "invalid_send_at", "{bad}");
        }
    }
}
