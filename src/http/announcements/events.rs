//! `GET /v1/announcements/{id}/events`: an announcement's live progress as Server-Sent Events.
//!
//! The stream polls the store on a short interval (the same reads as `GET /v1/announcements/{id}`,
//! so every replica can serve it and nothing has to be published between them), sends a
//! `progress` event whenever the counts, status or ETA changed, and a final `completed` event
//! once nothing is pending; then it ends. A client that goes away simply drops the stream.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use super::dto::CountsOut;
use super::eta;
use crate::domain::{AnnouncementId, TenantId};
use crate::http::auth::Tenant;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::store::{Announcement, AnnouncementStatus};

/// How often the stream re-reads the announcement. Short enough for a live progress bar, long
/// enough that a thousand open streams stay cheap.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A stream ends after this long even if the announcement is still pending (a scheduled one
/// may wait for days); an `EventSource` reconnects by itself and gets the current state.
const MAX_STREAM: Duration = Duration::from_secs(3600);

/// One `progress` or `completed` event's JSON data.
#[derive(Serialize, ToSchema, Clone, PartialEq)]
pub struct ProgressEvent {
    /// As in `GET /v1/announcements/{id}`: `scheduled`, `queued`, `sending`, `completed` or
    /// `cancelled`.
    pub status: String,
    pub counts: CountsOut,
    /// Deliveries settled per second over the last 30-60 seconds of sending.
    pub rate_per_second: f64,
    /// Seconds until nothing is pending (null when unknown or completed).
    pub eta_seconds: Option<u64>,
    /// True while deliveries are pending and none moved in the last 10 seconds.
    pub eta_stale: bool,
}

/// One event of the stream as it goes over the wire (what each item of the
/// `text/event-stream` response looks like).
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: events are written by axum's `Event`.
pub struct ProgressStreamEvent {
    /// `progress` or `completed`.
    #[schema(pattern = "^(progress|completed)$")]
    pub event: String,
    /// A `ProgressEvent` (see the schema of that name) as JSON.
    pub data: String,
}

/// Stream an announcement's progress (Server-Sent Events).
///
/// Events: `progress` (data: the counts, rate and ETA) whenever they change, first at once;
/// then `completed` (same data) when no delivery is pending, and the stream ends. Comments
/// (`:`) keep idle connections open. A stream lasts at most an hour (an `EventSource`
/// reconnects and resumes with the current state) and ends when the server shuts down.
#[utoipa::path(
    get, path = "/v1/announcements/{id}/events", tag = "announcements",
    params(("id" = String, Path, description = "Announcement id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of `progress` events and a final `completed` event; each event's data is a ProgressEvent as JSON", content_type = "text/event-stream", body = ProgressStreamEvent),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
    )
)]
pub(super) async fn announcement_events(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let id = AnnouncementId::parse(&id).ok_or(ApiError::NotFound("announcement"))?;
    // Checked before the stream starts, so a wrong id is a plain 404 rather than an empty stream.
    let first = state
        .store
        .get_announcement(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("announcement"))?;
    let first = snapshot(&state, &first).await?;
    let shutdown = state.shutdown.clone();
    let poller = Poller {
        state,
        tenant,
        id,
        last: None,
        pending: Some(first),
        done: false,
    };
    let events = stream::unfold(poller, Poller::next)
        .flat_map(stream::iter)
        .take_until(tokio::time::sleep(MAX_STREAM))
        .take_until(shutdown.cancelled_owned())
        .map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The stream's state between polls.
struct Poller {
    state: AppState,
    tenant: TenantId,
    id: AnnouncementId,
    /// The last snapshot sent, so unchanged polls send nothing.
    last: Option<ProgressEvent>,
    /// A snapshot read but not yet looked at (the handler's first read).
    pending: Option<(ProgressEvent, bool)>,
    done: bool,
}

impl Poller {
    /// The events of one poll (often none); `None` ends the stream.
    async fn next(mut self) -> Option<(Vec<Event>, Self)> {
        if self.done {
            return None;
        }
        let (now, finished) = match self.pending.take() {
            Some(first) => first,
            None => {
                tokio::time::sleep(POLL_INTERVAL).await;
                match self.read().await {
                    Ok(Some(read)) => read,
                    // Gone (its channel was deleted) or the store failed: end the stream; an
                    // EventSource reconnects and gets a 404 or a fresh start.
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(announcement.id = %self.id, error = %e, "progress stream ends: read failed");
                        return None;
                    }
                }
            }
        };
        let mut events = Vec::new();
        if self.last.as_ref() != Some(&now) {
            events.push(event("progress", &now));
        }
        if finished {
            events.push(event("completed", &now));
            self.done = true;
        }
        self.last = Some(now);
        Some((events, self))
    }

    async fn read(&self) -> Result<Option<(ProgressEvent, bool)>, ApiError> {
        let Some(announcement) = self
            .state
            .store
            .get_announcement(&self.tenant, &self.id)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(snapshot(&self.state, &announcement).await?))
    }
}

/// The announcement's progress now, and whether it is finished (nothing pending, and not
/// waiting for its `send_at`).
async fn snapshot(
    state: &AppState,
    announcement: &Announcement,
) -> Result<(ProgressEvent, bool), ApiError> {
    let progress = eta::progress(state, announcement).await?;
    let finished = match announcement.status {
        AnnouncementStatus::Completed | AnnouncementStatus::Cancelled => true,
        AnnouncementStatus::Scheduled => false,
        AnnouncementStatus::Queued | AnnouncementStatus::Sending => {
            announcement.counts.pending == 0
        }
    };
    // Rounded so that a pace drifting in the last digits does not send an event every poll.
    let rate = (progress.rate_per_second * 10.0).round() / 10.0;
    let event = ProgressEvent {
        status: announcement.status.as_str().into(),
        counts: super::dto::counts_out(announcement.counts),
        rate_per_second: rate,
        eta_seconds: progress.eta_seconds,
        eta_stale: progress.eta_stale,
    };
    Ok((event, finished))
}

fn event(name: &str, data: &ProgressEvent) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .expect("a ProgressEvent serializes")
}
