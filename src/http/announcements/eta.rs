//! An announcement's progress as `GET /v1/announcements/{id}` shows it: the topic it went to and
//! the estimated seconds until nothing is pending, from the recent sending pace its row keeps
//! and the channel's rate budget. Kept apart from the handlers so the arithmetic is tested on its own.

use chrono::Utc;

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::Announcement;

/// An announcement older than this with pending deliveries and nothing settled within it is
/// stalled: its ETA is shown as unknown (null, `eta_stale`) instead of growing.
const STALL_WINDOW: chrono::Duration = chrono::Duration::seconds(10);

/// Seconds until `pending` deliveries are out: at the measured pace (`settled` in
/// `window_secs`), capped by `budget_per_sec` when a rate governor applies, or at the budget
/// alone before anything was measured. None when nothing is pending or the pace is unknown.
fn eta_seconds(
    pending: i64,
    settled: i64,
    window_secs: f64,
    budget_per_sec: Option<f64>,
) -> Option<u64> {
    if pending <= 0 {
        return None;
    }
    let measured = settled as f64 / window_secs.max(1.0);
    let rate = match budget_per_sec {
        Some(budget) if measured > 0.0 => measured.min(budget),
        Some(budget) => budget,
        None => measured,
    };
    (rate > 0.0).then(|| (pending as f64 / rate).ceil() as u64)
}

/// The topic and ETA of a stored announcement, read from the pipeline's pace at this moment.
pub(super) struct Progress {
    pub topic: Option<String>,
    pub eta_seconds: Option<u64>,
    pub eta_stale: bool,
    /// Deliveries settled per second over the pace window (0 before anything settled).
    pub rate_per_second: f64,
}

/// Reads `announcement`'s pace as its row keeps it (settled over the last 30-60 s of sending,
/// see `store/settle_sql.rs`) and turns it into an ETA under the governor's budget when the
/// governor is on.
pub(super) async fn progress(
    state: &AppState,
    announcement: &Announcement,
) -> Result<Progress, ApiError> {
    let now = Utc::now();
    let pace = state
        .store
        .pipeline()
        .announcement_pace(&announcement.id)
        .await?;
    let (topic, settled, window, settled_at) = match pace {
        Some(p) => (
            p.topic,
            p.settled_since,
            (now - p.since).as_seconds_f64(),
            p.settled_at,
        ),
        None => (None, 0, 0.0, None),
    };
    let config = &state.xmtp.config;
    let budget = state.xmtp.governor_on().then(|| {
        f64::from(config.rate_per_minute) * f64::from(config.rate_multiplier.max(1)) / 60.0
    });
    // Stalled: pending rows made long enough ago (or due long enough ago, when scheduled)
    // and nothing settled recently.
    let due = announcement.send_at.unwrap_or(announcement.created_at);
    let stale = announcement.counts.pending > 0
        && announcement.created_at < now - STALL_WINDOW
        && due < now - STALL_WINDOW
        && settled_at.is_none_or(|at| at < now - STALL_WINDOW);
    let mut eta = eta_seconds(announcement.counts.pending, settled, window, budget);
    // Scheduled: nothing moves before send_at, then at the budget (or an unknown pace).
    if let Some(wait) = announcement
        .send_at
        .filter(|at| *at > now && announcement.counts.pending > 0)
        .map(|at| (at - now).num_seconds().max(0) as u64)
    {
        eta = Some(wait + eta.unwrap_or(0));
    }
    Ok(Progress {
        topic,
        eta_seconds: if stale { None } else { eta },
        eta_stale: stale,
        rate_per_second: settled as f64 / window.max(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::eta_seconds;

    #[test]
    fn eta_follows_the_measured_pace_within_the_budget() {
        assert_eq!(eta_seconds(0, 10, 60.0, None), None, "nothing pending");
        assert_eq!(
            eta_seconds(100, 0, 60.0, None),
            None,
            "no pace yet, no governor"
        );
        assert_eq!(eta_seconds(100, 50, 10.0, None), Some(20), "5/s");
        assert_eq!(
            eta_seconds(100, 600, 60.0, Some(5.0)),
            Some(20),
            "capped at 5/s"
        );
        assert_eq!(
            eta_seconds(100, 0, 60.0, Some(10.0)),
            Some(10),
            "budget alone"
        );
        assert_eq!(
            eta_seconds(3, 1, 0.2, None),
            Some(3),
            "window floors at 1 s"
        );
    }
}
