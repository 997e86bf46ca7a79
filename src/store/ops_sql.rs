//! The SQL behind [`OpsStore`](super::OpsStore), written once for both backends.

use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use chrono::{DateTime, Utc};

use super::dialect::SqlPool;
use super::ops::{AnnouncementState, OpsStore, TenantSummary, TenantSummaryRow};
use super::rows::{AnnouncementRow, ANNOUNCEMENT_COLUMNS};
use super::{Announcement, Page, StoreResult};
use crate::domain::{ChannelId, TenantId};

#[async_trait::async_trait]
impl<S> OpsStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> TenantSummaryRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> AnnouncementState: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> AnnouncementRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String, i64): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64, DateTime<Utc>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn applied_migrations(&self) -> StoreResult<Vec<(i64, DateTime<Utc>)>> {
        Ok(sqlx::query_as(
            "SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(self.sql_pool())
        .await?)
    }

    async fn list_tenants(&self, page: &Page) -> StoreResult<Vec<TenantSummary>> {
        let rows: Vec<TenantSummaryRow> = sqlx::query_as(
            "SELECT t.id, t.name, t.created_at, \
             (SELECT COUNT(*) FROM channels c WHERE c.tenant_id = t.id AND c.deleted_at IS NULL) \
               AS channels, \
             (SELECT COUNT(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) \
               AS active_keys \
             FROM tenants t WHERE t.id > $1 ORDER BY t.id LIMIT $2",
        )
        .bind(page.cursor.as_deref().unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn announcement_state(&self, id: &str) -> StoreResult<Option<AnnouncementState>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.status, CAST(a.total AS BIGINT) AS total, \
             CAST(a.total - a.delivered_count - a.failed_count - a.skipped_count AS BIGINT) AS pending, \
             CAST(a.delivered_count AS BIGINT) AS delivered, \
             CAST(a.failed_count AS BIGINT) AS failed, \
             CAST(a.skipped_count AS BIGINT) AS skipped, \
             a.created_at FROM announcements a WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(self.sql_pool())
        .await?)
    }

    async fn list_channel_announcements(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        status: Option<&str>,
        page: &Page,
    ) -> StoreResult<Option<Vec<Announcement>>> {
        let live: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        if live.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {ANNOUNCEMENT_COLUMNS} FROM announcements \
             WHERE channel_id = $1 AND tenant_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        // Audited: the only inserted fragment is the fixed column list.
        let rows: Vec<AnnouncementRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .bind(status)
            .bind(page.cursor.as_deref())
            .bind(i64::from(page.limit))
            .fetch_all(self.sql_pool())
            .await?;
        Ok(Some(
            rows.into_iter()
                .map(AnnouncementRow::into_announcement)
                .collect(),
        ))
    }

    async fn replace_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.sql_pool())
        .await?;
        Ok(())
    }
}
