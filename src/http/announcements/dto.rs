//! The announcement resource's wire types (request, response, delivery list) and their
//! conversions from store types. Only here and in the handlers does serde meet announcements.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{Priority, RichContent, TransactionMetadata};
use crate::store::{Announcement, Counts, Delivery};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementIn {
    /// Message text, at most 16 KiB of UTF-8.
    #[schema(example = "Governance vote #42 closes in 24 hours.")]
    pub text: String,
    /// `"all"` (default) or `{"addresses": [...]}`.
    pub audience: Option<AudienceIn>,
    /// Delivery priority (default `normal`).
    pub priority: Option<PriorityIn>,
    /// Send only to subscribers who receive this channel topic (audience must be `all`).
    /// Opt-outs are honoured again at send time.
    pub topic: Option<String>,
    /// Send at this instant (RFC 3339, in the future, at most 366 days ahead) instead of now.
    /// Until then the announcement is `scheduled` and nothing is sent; it can be cancelled.
    #[schema(example = "2026-12-24T09:00:00Z")]
    pub send_at: Option<String>,
    /// How `text` goes out (default `{"type": "text"}`).
    pub content: Option<AnnouncementContent>,
}

/// An announcement's content type. Every type other than `text` carries a fallback text that
/// XMTP clients without its codec show: `text` itself, or markdown's `fallback`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnnouncementContent {
    /// Plain text (`xmtp.org/text:1.0`).
    Text,
    /// `xmtp.org/markdown:1.0`: `text` is markdown; clients without the codec show `fallback`
    /// (default: `text` as it is).
    Markdown {
        #[serde(default)]
        fallback: Option<String>,
    },
    /// `xmtp.org/transactionReference:1.0` (XIP-21); `text` is the fallback.
    TransactionReference {
        /// E.g. `eip155`.
        #[serde(default)]
        namespace: Option<String>,
        /// Chain id: a number, or a decimal or `0x` hex string.
        network_id: NetworkId,
        /// The transaction hash (`0x…`).
        reference: String,
        #[serde(default)]
        metadata: Option<TransactionMetadataIn>,
    },
    /// `text` with `url` on its own last line (unless the text holds it), which XMTP apps show
    /// as a link; sent as plain text.
    Link { url: String },
}

/// A network id as a JSON number or string.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum NetworkId {
    Number(u64),
    Text(String),
}

/// XIP-21 transaction metadata; every field is required when `metadata` is given.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionMetadataIn {
    #[schema(example = "transfer")]
    pub transaction_type: String,
    #[schema(example = "USDC")]
    pub currency: String,
    /// In the currency's smallest unit.
    pub amount: f64,
    pub decimals: u32,
    pub from_address: String,
    pub to_address: String,
}

impl AnnouncementContent {
    /// The stored form (`None`: plain text).
    pub fn into_domain(self) -> Option<RichContent> {
        Some(match self {
            AnnouncementContent::Text => return None,
            AnnouncementContent::Markdown { fallback } => RichContent::Markdown { fallback },
            AnnouncementContent::TransactionReference {
                namespace,
                network_id,
                reference,
                metadata,
            } => RichContent::TransactionReference {
                namespace,
                network_id: match network_id {
                    NetworkId::Number(n) => n.to_string(),
                    NetworkId::Text(s) => s,
                },
                reference,
                metadata: metadata.map(|m| TransactionMetadata {
                    transaction_type: m.transaction_type,
                    currency: m.currency,
                    amount: m.amount,
                    decimals: m.decimals,
                    from_address: m.from_address,
                    to_address: m.to_address,
                }),
            },
            AnnouncementContent::Link { url } => RichContent::Link { url },
        })
    }

    fn from_domain(content: Option<RichContent>) -> Self {
        match content {
            None => AnnouncementContent::Text,
            Some(RichContent::Markdown { fallback }) => AnnouncementContent::Markdown { fallback },
            Some(RichContent::TransactionReference {
                namespace,
                network_id,
                reference,
                metadata,
            }) => AnnouncementContent::TransactionReference {
                namespace,
                network_id: NetworkId::Text(network_id),
                reference,
                metadata: metadata.map(|m| TransactionMetadataIn {
                    transaction_type: m.transaction_type,
                    currency: m.currency,
                    amount: m.amount,
                    decimals: m.decimals,
                    from_address: m.from_address,
                    to_address: m.to_address,
                }),
            },
            Some(RichContent::Link { url }) => AnnouncementContent::Link { url },
            // Sent as an XMTP reply whose body and fallback is `text`; `retracts` names it.
            Some(RichContent::Retraction { .. }) => AnnouncementContent::Text,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AudienceIn {
    /// Every active subscriber.
    Keyword(AudienceKeyword),
    /// Only these addresses (up to 10,000); non-subscribers are recorded as `skipped`.
    Addresses(AddressList),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AudienceKeyword {
    All,
}

// Read through a map so that only an object is accepted: serde's derived structs also take an
// array, filling fields by position (`[["0x…"]]`). `deny_unknown_fields` is for the schema; the
// map conversion enforces it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    try_from = "std::collections::BTreeMap<String, Vec<String>>",
    deny_unknown_fields
)]
pub struct AddressList {
    pub addresses: Vec<String>,
}

impl TryFrom<std::collections::BTreeMap<String, Vec<String>>> for AddressList {
    type Error = &'static str;

    fn try_from(
        mut map: std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<Self, Self::Error> {
        match (map.remove("addresses"), map.is_empty()) {
            (Some(addresses), true) => Ok(Self { addresses }),
            _ => Err(r#"expected {"addresses": [...]} and no other field"#),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityIn {
    Critical,
    Normal,
    Bulk,
}

#[derive(Serialize, ToSchema, Clone, PartialEq)]
pub struct CountsOut {
    pub total: i64,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AnnouncementOut {
    #[schema(example = "ann_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub channel_id: String,
    /// `scheduled` (waiting for `send_at`), `queued`, `sending`, `completed`, or `cancelled`
    /// (pending deliveries ended `skipped`, reason `cancelled`; see `POST …/cancel`).
    pub status: String,
    pub priority: PriorityIn,
    pub text: String,
    /// The channel topic it was sent to (null: every active subscriber, or a listed audience).
    pub topic: Option<String>,
    pub counts: CountsOut,
    /// Estimated seconds until no delivery is pending: pending deliveries over the pace of the
    /// last 30-60 seconds of sending (capped by the channel's rate budget when the governor is on; the budget
    /// alone before anything was sent). Null when completed or not yet known. Shown by
    /// `GET /v1/announcements/{id}`.
    /// Null too while the announcement is stalled: deliveries are pending but none was
    /// settled in the last 10 seconds (e.g. right after a restart, or waiting for retries).
    #[schema(example = 42)]
    pub eta_seconds: Option<u64>,
    /// True while deliveries are pending and none moved in the last 10 seconds; the ETA is
    /// then null rather than a guess that keeps growing.
    pub eta_stale: bool,
    pub created_at: DateTime<Utc>,
    /// When sending starts (null: at creation).
    pub send_at: Option<DateTime<Utc>>,
    /// When it was cancelled (null: not cancelled).
    pub cancelled_at: Option<DateTime<Utc>>,
    /// How `text` goes out.
    pub content: AnnouncementContent,
    /// Set on a retraction: the announcement it retracts. herald sends one when a reorg
    /// removes the chain log a trigger announced (possible with `confirmations` below the
    /// reorg depth), to everyone the original was delivered or queued to, as an XMTP reply
    /// (`xmtp.org/reply:1.0`) to their copy of the original message, `text` being the reply
    /// and the fallback of clients without the reply codec.
    #[schema(example = json!(null))]
    pub retracts: Option<String>,
    /// The retraction sent for this announcement (null: not retracted).
    #[schema(example = json!(null))]
    pub retracted_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryOut {
    pub address: String,
    /// `pending`, `delivered`, `failed` or `skipped`.
    pub status: String,
    /// Sends attempted so far: the failed tries plus, once delivered, the one that succeeded
    /// (a delivered delivery shows at least 1; rate-limit pauses never count).
    pub attempts: i32,
    /// Why a delivery failed or was skipped.
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryOut>,
    pub next_cursor: Option<String>,
}

/// A page of a channel's announcements, newest first.
#[derive(Serialize, ToSchema)]
pub struct AnnouncementList {
    /// Each with its delivery counts; `topic` and `eta_seconds` are shown by
    /// `GET /v1/announcements/{id}` only (null here).
    pub items: Vec<AnnouncementOut>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnnouncementParams {
    /// Only announcements in this status: `queued`, `sending` or `completed`.
    pub status: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this status.
    pub status: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

pub(super) fn counts_out(c: Counts) -> CountsOut {
    CountsOut {
        total: c.total,
        pending: c.pending,
        delivered: c.delivered,
        failed: c.failed,
        skipped: c.skipped,
    }
}

fn priority_out(p: Priority) -> PriorityIn {
    match p {
        Priority::Critical => PriorityIn::Critical,
        Priority::Normal => PriorityIn::Normal,
        Priority::Bulk => PriorityIn::Bulk,
    }
}

impl From<PriorityIn> for Priority {
    fn from(p: PriorityIn) -> Self {
        match p {
            PriorityIn::Critical => Priority::Critical,
            PriorityIn::Normal => Priority::Normal,
            PriorityIn::Bulk => Priority::Bulk,
        }
    }
}

impl From<Announcement> for AnnouncementOut {
    fn from(a: Announcement) -> Self {
        AnnouncementOut {
            id: a.id.to_string(),
            channel_id: a.channel_id.to_string(),
            status: a.status.as_str().into(),
            priority: priority_out(a.priority),
            text: a.text,
            topic: None,
            counts: counts_out(a.counts),
            eta_seconds: None,
            eta_stale: false,
            created_at: a.created_at,
            send_at: a.send_at,
            cancelled_at: a.cancelled_at,
            retracts: match &a.content {
                Some(RichContent::Retraction { retracts, .. }) => Some(retracts.clone()),
                _ => None,
            },
            retracted_by: a.retracted_by.map(|id| id.to_string()),
            content: AnnouncementContent::from_domain(a.content),
        }
    }
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            address: d.address.to_string(),
            status: d.status.as_str().into(),
            attempts: d.attempts + i32::from(d.status == crate::store::DeliveryStatus::Delivered),
            reason: d.reason,
            updated_at: d.updated_at,
        }
    }
}
