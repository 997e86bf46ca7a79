//! Values passed in and out of the [`Store`](super::Store); the row shapes both backends decode
//! are in `rows.rs`.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::domain::{Address, AnnouncementId, ChannelId, Priority, RichContent, TenantId};

/// Idempotency records older than this are forgotten and the key may be reused.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// An in-flight record older than this belongs to a request that died (the request timeout is
/// far shorter), so a retry may take it over instead of waiting a day.
pub const IDEMPOTENCY_STALE_IN_FLIGHT: chrono::Duration = chrono::Duration::minutes(2);

pub struct NewTenant {
    pub id: TenantId,
    pub name: String,
    pub key_hash: String,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A channel about to be created; the wallet key arrives already sealed under the KEK.
pub struct NewChannel {
    pub id: ChannelId,
    pub tenant: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub address: Address,
    pub wallet_key_sealed: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub description: Option<String>,
    pub address: Address,
    pub xmtp_inbox_id: Option<String>,
    pub xmtp_installation_id: Option<String>,
    /// Why the last attempt to register the channel on XMTP failed (None once registered).
    pub xmtp_registration_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to a channel; `None` leaves a field alone, `Some(None)` clears the description.
#[derive(Debug, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

/// Keyset pagination: at most `limit` items strictly after `cursor` in the list's order.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    Added,
    Reactivated,
    AlreadyActive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New or re-activated subscriptions.
    pub added: u64,
    /// Addresses that were already active.
    pub already: u64,
}

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub address: Address,
    pub subscribed_at: DateTime<Utc>,
}

/// Who an announcement goes to.
#[derive(Debug, Clone)]
pub enum Audience {
    /// Every active subscriber at creation time.
    All,
    /// These addresses; ones that are not active subscribers get a `skipped` delivery
    /// (reason `not_subscribed`) so the outcome is visible per recipient.
    Addresses(Vec<Address>),
    /// Every active subscriber who receives this topic (by choice or by the topic's default).
    Topic(String),
}

impl Audience {
    /// The topic targeted, if any (stored on the announcement for the send-time check).
    pub fn topic(&self) -> Option<&str> {
        match self {
            Self::Topic(name) => Some(name),
            _ => None,
        }
    }
}

pub struct NewAnnouncement {
    pub id: AnnouncementId,
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub text: String,
    pub priority: Priority,
    pub audience: Audience,
    /// Not sent before this instant (its deliveries are created due then); `None`: now.
    pub send_at: Option<DateTime<Utc>>,
    /// How `text` goes out when not as plain text.
    pub content: Option<RichContent>,
}

impl NewAnnouncement {
    /// The content as the `content` column keeps it (JSON; NULL is plain text).
    pub(super) fn content_json(&self) -> Option<String> {
        self.content
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("rich content always serializes"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncementStatus {
    Queued,
    Sending,
    Completed,
    /// Shown, never stored: queued with a `send_at` still ahead.
    Scheduled,
    /// Shown, never stored: cancelled (stored `completed` with `cancelled_at` set).
    Cancelled,
}

impl AnnouncementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Completed => "completed",
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status an API shows for a `stored` status: `cancelled` once cancelled, `scheduled`
    /// while queued before its `send_at`.
    pub fn shown(
        stored: Self,
        send_at: Option<DateTime<Utc>>,
        cancelled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        match (stored, send_at, cancelled_at) {
            (_, _, Some(_)) => Self::Cancelled,
            (Self::Queued, Some(at), None) if at > now => Self::Scheduled,
            _ => stored,
        }
    }

    pub(super) fn parse(s: &str) -> Self {
        match s {
            "sending" => Self::Sending,
            "completed" => Self::Completed,
            _ => Self::Queued,
        }
    }
}

/// What `Store::cancel_announcement` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// No such announcement for this tenant.
    NotFound,
    /// Nothing was pending (completed, or cancelled before): nothing changed.
    Finished,
    /// This many pending deliveries ended `skipped` with reason `cancelled`.
    Cancelled(u64),
}

/// Per-status delivery counts of one announcement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl Counts {
    /// Counts from an announcement row's kept ones: pending is what the others leave of the
    /// total.
    pub fn kept(total: i64, delivered: i64, failed: i64, skipped: i64) -> Self {
        Counts {
            total,
            pending: (total - delivered - failed - skipped).max(0),
            delivered,
            failed,
            skipped,
        }
    }

    /// Builds counts from `(status, count)` pairs of a GROUP BY.
    pub fn from_groups(groups: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut counts = Counts::default();
        for (status, n) in groups {
            counts.total += n;
            match status.as_str() {
                "pending" => counts.pending += n,
                "delivered" => counts.delivered += n,
                "failed" => counts.failed += n,
                _ => counts.skipped += n,
            }
        }
        counts
    }
}

#[derive(Debug, Clone)]
pub struct Announcement {
    pub id: AnnouncementId,
    pub channel_id: ChannelId,
    pub text: String,
    pub priority: Priority,
    /// As shown (see [`AnnouncementStatus::shown`]).
    pub status: AnnouncementStatus,
    pub counts: Counts,
    pub created_at: DateTime<Utc>,
    pub send_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub content: Option<RichContent>,
    /// The retraction herald sent after a reorg removed the chain log this announcement was
    /// about.
    pub retracted_by: Option<AnnouncementId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            "skipped" => Ok(Self::Skipped),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub address: Address,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// An idempotency key, scoped to the tenant that sent it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub tenant: TenantId,
    pub key: String,
}

/// A response recorded for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status_code: u16,
    pub body: String,
}

/// What `begin_idempotent` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request owns the key now; do the work.
    Started,
    /// The same request finished before; answer with its response.
    Replay(StoredResponse),
    /// The key was used with a different request body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Completes an idempotency record inside the announcement's transaction; `render` turns the
/// created announcement into the exact response the client receives.
pub struct IdempotencyCompletion {
    pub key: IdempotencyKey,
    /// `None`: `begin_idempotent` claimed the key before, and its `in_flight` record becomes
    /// `done`. `Some(request hash)`: nobody claimed it; the record is inserted, already `done`,
    /// in the announcement's transaction (one commit instead of two), and if the key is
    /// recorded by then nothing is created ([`Creation::KeyExists`]). A concurrent request
    /// with the same key waits for that transaction and then finds the record.
    pub unclaimed_hash: Option<String>,
    /// Called more than once when the response is recorded by a single statement (see
    /// `store/announcements_idempotency_sql.rs`, `RecordedResponse`); every call must render
    /// the same way.
    pub render: Box<dyn Fn(&Announcement) -> StoredResponse + Send + Sync>,
}

/// What `create_announcement` did.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Returned once per request and unpacked at once.
pub enum Creation {
    /// Created, with its deliveries (and its idempotency record, if any).
    Created(Announcement),
    /// The channel is missing, deleted or another tenant's: nothing was created.
    NoChannel,
    /// The key of an unclaimed [`IdempotencyCompletion`] was already recorded: nothing was
    /// created, and the caller asks `begin_idempotent` what to answer.
    KeyExists,
}
