//! The SQL behind [`OpsStore`](super::OpsStore), written once for both backends.

use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::dialect::SqlPool;
use super::ops::{OpsStore, TenantSummary, TenantSummaryRow};
use super::{Page, StoreResult};

#[async_trait::async_trait]
impl<S> OpsStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> TenantSummaryRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
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
