//! The row shapes both backends decode (the column types are chosen so one row struct decodes
//! from Postgres and SQLite), and their conversion into the [`Store`](super::Store)'s values.

use chrono::{DateTime, Utc};

use super::types::*;
use crate::domain::{Address, AnnouncementId, ChannelId, RichContent};

#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    id: String,
    name: String,
    description: Option<String>,
    address: String,
    xmtp_inbox_id: Option<String>,
    xmtp_installation_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    xmtp_registration_error: Option<String>,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: ChannelId::from_trusted(r.id),
            name: r.name,
            description: r.description,
            address: Address::from_trusted(r.address),
            xmtp_inbox_id: r.xmtp_inbox_id,
            xmtp_installation_id: r.xmtp_installation_id,
            xmtp_registration_error: r.xmtp_registration_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The columns an [`AnnouncementRow`] reads, in its order.
///
/// `retracted_by` groups by `retracts` so the lookup goes through the `announcements_retracts`
/// index: a bare `MIN(r.id)` let Postgres, without statistics (a fresh database), walk the
/// primary key in id order and test every announcement (7-10 ms at 17,000 announcements per
/// row read, most of a GET in the REST bench; issue 15). No retraction: no group, NULL.
///
/// The counts are the row's own (migrations/postgres/0023), kept by every write that moves a
/// delivery: a read is O(1) whatever the number of recipients.
pub(super) const ANNOUNCEMENT_COLUMNS: &str =
    "id, channel_id, text, priority, status, created_at, send_at, cancelled_at, content, \
     CAST(total AS BIGINT) AS total, CAST(delivered_count AS BIGINT) AS delivered_count, \
     CAST(failed_count AS BIGINT) AS failed_count, CAST(skipped_count AS BIGINT) AS skipped_count, \
     (SELECT MIN(r.id) FROM announcements r WHERE r.retracts = announcements.id \
      GROUP BY r.retracts) AS retracted_by";

#[derive(sqlx::FromRow)]
pub(super) struct AnnouncementRow {
    id: String,
    channel_id: String,
    text: String,
    priority: String,
    status: String,
    created_at: DateTime<Utc>,
    send_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    content: Option<String>,
    total: i64,
    delivered_count: i64,
    failed_count: i64,
    skipped_count: i64,
    retracted_by: Option<String>,
}

impl AnnouncementRow {
    pub(super) fn into_announcement(self) -> Announcement {
        let counts = Counts::kept(
            self.total,
            self.delivered_count,
            self.failed_count,
            self.skipped_count,
        );
        Announcement {
            id: AnnouncementId::from_trusted(self.id),
            channel_id: ChannelId::from_trusted(self.channel_id),
            text: self.text,
            priority: self.priority.parse().unwrap_or_default(),
            status: AnnouncementStatus::shown(
                AnnouncementStatus::parse(&self.status),
                self.send_at,
                self.cancelled_at,
                Utc::now(),
            ),
            counts,
            created_at: self.created_at,
            send_at: self.send_at,
            cancelled_at: self.cancelled_at,
            content: parse_content(self.content.as_deref()),
            retracted_by: self.retracted_by.map(AnnouncementId::from_trusted),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    address: String,
    status: String,
    attempts: i32,
    reason: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        Delivery {
            address: Address::from_trusted(r.address),
            status: r.status.parse().unwrap_or(DeliveryStatus::Pending),
            attempts: r.attempts,
            reason: r.reason,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IdempotencyRow {
    pub request_hash: String,
    pub state: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl IdempotencyRow {
    /// Decides what an existing record means for a new request with `request_hash`. Returns
    /// `None` when the record is expired or stale and may be taken over.
    pub(super) fn judge(&self, request_hash: &str, now: DateTime<Utc>) -> Option<IdempotencyBegin> {
        let age = now - self.created_at;
        if age > IDEMPOTENCY_WINDOW {
            return None;
        }
        if self.request_hash != request_hash {
            return Some(IdempotencyBegin::Mismatch);
        }
        match (self.state.as_str(), self.status_code, &self.response_body) {
            ("done", Some(code), Some(body)) => Some(IdempotencyBegin::Replay(StoredResponse {
                status_code: u16::try_from(code).unwrap_or(500),
                body: body.clone(),
            })),
            _ if age > IDEMPOTENCY_STALE_IN_FLIGHT => None,
            _ => Some(IdempotencyBegin::InProgress),
        }
    }
}

/// Reads the `content` column (NULL, or JSON written by this version: anything else reads as
/// plain text rather than failing the read).
pub(crate) fn parse_content(raw: Option<&str>) -> Option<RichContent> {
    raw.and_then(|json| serde_json::from_str(json).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_status_follows_send_at_and_cancel() {
        let now = Utc::now();
        let later = Some(now + chrono::Duration::seconds(5));
        let earlier = Some(now - chrono::Duration::seconds(5));
        use AnnouncementStatus::*;
        assert_eq!(
            AnnouncementStatus::shown(Queued, later, None, now),
            Scheduled
        );
        assert_eq!(
            AnnouncementStatus::shown(Queued, earlier, None, now),
            Queued
        );
        assert_eq!(AnnouncementStatus::shown(Queued, None, None, now), Queued);
        assert_eq!(
            AnnouncementStatus::shown(Completed, later, Some(now), now),
            Cancelled
        );
        assert_eq!(AnnouncementStatus::shown(Sending, None, None, now), Sending);
    }
}
