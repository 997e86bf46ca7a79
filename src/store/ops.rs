//! Operator reads and writes: the admin's tenant list and setting replacement (`herald admin
//! reset-token`).
//!
//! [`OpsStore`] is a supertrait of [`Store`](super::Store); its SQL is portable and written
//! once in `ops_sql.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Announcement, Page, StoreResult, Tenant};
use crate::domain::{ChannelId, TenantId};

/// A tenant as the admin sees it in the list.
#[derive(Debug, Clone)]
pub struct TenantSummary {
    pub tenant: Tenant,
    /// Its live (not deleted) channels.
    pub channels: i64,
    /// Its active API keys.
    pub active_keys: i64,
}

#[async_trait]
pub trait OpsStore: Send + Sync {
    /// Every tenant ordered by id (ids sort by creation time), after `page.cursor`.
    async fn list_tenants(&self, page: &Page) -> StoreResult<Vec<TenantSummary>>;
    /// The schema migrations applied to this database: (version, when), oldest first.
    async fn applied_migrations(&self) -> StoreResult<Vec<(i64, DateTime<Utc>)>>;
    /// Stores a setting, replacing any value it had.
    async fn replace_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// One announcement's status and delivery counts (for the worker's "started sending" /
    /// "completed" log lines, read once per transition, not per settle).
    async fn announcement_state(&self, id: &str) -> StoreResult<Option<AnnouncementState>>;
    /// A live channel's announcements, newest first, after `page.cursor` (an announcement
    /// id), optionally only those in `status` (`queued`, `sending`, `completed`); `None` when
    /// the tenant has no such live channel.
    async fn list_channel_announcements(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        status: Option<&str>,
        page: &Page,
    ) -> StoreResult<Option<Vec<Announcement>>>;
}

/// An announcement's status and counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AnnouncementState {
    pub id: String,
    pub status: String,
    pub total: i64,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub created_at: DateTime<Utc>,
}

/// Tenant list row shape shared by both backends.
#[derive(sqlx::FromRow)]
pub(super) struct TenantSummaryRow {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    channels: i64,
    active_keys: i64,
}

impl From<TenantSummaryRow> for TenantSummary {
    fn from(row: TenantSummaryRow) -> Self {
        Self {
            tenant: Tenant {
                id: TenantId::from_trusted(row.id),
                name: row.name,
                created_at: row.created_at,
            },
            channels: row.channels,
            active_keys: row.active_keys,
        }
    }
}
