//! The SQL behind [`Store`](super::Store) itself (settings, tenants, channels, announcement
//! reads), written once for both backends: one impl for every store over a [`SqlPool`] of a
//! [`Dialect`].
//!
//! Portable SQL: `CAST($n AS TEXT) IS NULL` instead of `$n::text`, booleans and timestamps
//! bound as Rust values. What really differs per backend is a [`Dialect`] method (the write
//! transaction, the log checkpoint); subscribing and creating announcements call the generic
//! functions of `subscribers_sql.rs` and `announcements_sql.rs`.

use chrono::{DateTime, Utc};
use sqlx::{Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::announcements_sql::{self, FanOutDialect};
use super::dialect::{Dialect, SqlPool};
use super::idempotency_sql as idempotency;
use super::settle_sql;
use super::subscribers_sql;
use super::*;

// The last registration error shows only while the channel has no inbox yet.
const CHANNEL_COLUMNS: &str =
    "id, name, description, address, xmtp_inbox_id, xmtp_installation_id, created_at, updated_at, \
     (SELECT s.last_error FROM channel_senders s WHERE s.channel_id = channels.id \
      AND channels.xmtp_inbox_id IS NULL) AS xmtp_registration_error";

/// Delivery counts of one announcement, by status.
#[async_trait::async_trait]
impl<S> Store for S
where
    S: SqlPool + 'static,
    S::Db: FanOutDialect,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> bool: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i32: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<String>: Encode<'q, S::Db>,
    for<'r> i64: Decode<'r, S::Db>,
    for<'r> (bool,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, DateTime<Utc>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> String: Decode<'r, S::Db> + Type<S::Db>,
    for<'r> (String, i64): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> ChannelRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> AnnouncementRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> DeliveryRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> IdempotencyRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    S: SelfServiceStore
        + AccessStore
        + SealedStore
        + WebhookStore
        + WatchStore
        + TriggerStore
        + PipelineStore
        + OpsStore,
{
    fn triggers(&self) -> &dyn TriggerStore {
        self
    }

    fn pipeline(&self) -> &dyn PipelineStore {
        self
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.sql_pool()).await?;
        Ok(())
    }

    async fn checkpoint(&self) -> StoreResult<()> {
        Ok(S::Db::checkpoint(self.sql_pool()).await?)
    }

    async fn pending_deliveries(&self) -> StoreResult<i64> {
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
            .fetch_one(self.sql_pool())
            .await?;
        Ok(n)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let value = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.sql_pool())
            .await?;
        Ok(value)
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn create_tenant(&self, tenant: &NewTenant) -> StoreResult<Tenant> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(tenant.id.as_str())
            .bind(tenant.name.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO api_keys (id, key_hash, tenant_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(ApiKeyId::generate().as_str())
        .bind(tenant.key_hash.as_str())
        .bind(tenant.id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Tenant {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            created_at: now,
        })
    }

    async fn tenant_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<TenantId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(id.map(TenantId::from_trusted))
    }

    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO channels (id, tenant_id, name, description, address, wallet_key_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CHANNEL_COLUMNS}"
        );
        let row: ChannelRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.id.as_str())
            .bind(channel.tenant.as_str())
            .bind(channel.name.as_str())
            .bind(channel.description.as_deref())
            .bind(channel.address.as_str())
            .bind(channel.wallet_key_sealed.as_slice())
            .bind(now)
            .fetch_one(self.sql_pool())
            .await?;
        Ok(row.into())
    }

    async fn list_channels(&self, tenant: &TenantId, page: &Page) -> StoreResult<Vec<Channel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE tenant_id = $1 AND deleted_at IS NULL \
             AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(page.cursor.as_deref())
            .bind(i64::from(page.limit))
            .fetch_all(self.sql_pool())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<Option<Channel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        );
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .fetch_optional(self.sql_pool())
            .await?;
        Ok(row.map(Into::into))
    }

    async fn update_channel(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        patch: &ChannelPatch,
    ) -> StoreResult<Option<Channel>> {
        let sql = format!(
            "UPDATE channels SET name = COALESCE($3, name), \
             description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = $6 \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL RETURNING {CHANNEL_COLUMNS}"
        );
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(patch.name.as_deref())
            .bind(patch.description.is_some())
            .bind(patch.description.as_ref().and_then(Option::as_deref))
            .bind(Utc::now())
            .fetch_optional(self.sql_pool())
            .await?;
        Ok(row.map(Into::into))
    }

    async fn delete_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<bool> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let deleted = sqlx::query(
            "UPDATE channels SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if S::Db::rows_affected(&deleted) == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', reason = 'channel_deleted', updated_at = $2 \
             WHERE channel_id = $1 AND status = 'pending'",
        )
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        settle_sql::recount_channel::<S::Db>(&mut tx, id.as_str(), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn subscribe(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<SubscribeOutcome> {
        subscribers_sql::subscribe::<S::Db>(self.sql_pool(), channel, address).await
    }

    async fn subscribe_many(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<BatchOutcome> {
        subscribers_sql::subscribe_many::<S::Db>(self.sql_pool(), channel, addresses).await
    }

    async fn unsubscribe(&self, channel: &ChannelId, address: &Address) -> StoreResult<bool> {
        let mut conn = self.sql_pool().acquire().await?;
        subscribers_sql::unsubscribe::<S::Db>(&mut *conn, channel, address, Utc::now()).await
    }

    async fn list_subscribers(
        &self,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Vec<Subscriber>> {
        subscribers_sql::list::<S::Db>(self.sql_pool(), channel, page).await
    }

    async fn create_announcement(
        &self,
        new: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Creation> {
        announcements_sql::create::<S::Db>(self.sql_pool(), new, idempotency).await
    }

    async fn get_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<Option<Announcement>> {
        let row: Option<AnnouncementRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ANNOUNCEMENT_COLUMNS} FROM announcements WHERE id = $1 AND tenant_id = $2"
        )))
        .bind(id.as_str())
        .bind(tenant.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(AnnouncementRow::into_announcement))
    }

    async fn cancel_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<CancelOutcome> {
        announcements_sql::cancel::<S::Db>(self.sql_pool(), tenant, id, Utc::now()).await
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
        status: Option<DeliveryStatus>,
        page: &Page,
    ) -> StoreResult<Option<Vec<Delivery>>> {
        let owned: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM announcements WHERE id = $1 AND tenant_id = $2")
                .bind(id.as_str())
                .bind(tenant.as_str())
                .fetch_optional(self.sql_pool())
                .await?;
        if owned.is_none() {
            return Ok(None);
        }
        // The status is written as a literal (one of four fixed words) so that a listing of
        // failed or skipped rows may use their partial indexes (`deliveries_failed`,
        // `deliveries_skipped`, migration 0024), which a bound parameter never implies; the
        // others walk the (announcement, address) unique index in address order.
        let status = status.map_or_else(String::new, |s| format!("AND status = '{}'", s.as_str()));
        let sql = format!(
            "SELECT address, status, attempts, reason, updated_at FROM deliveries \
             WHERE announcement_id = $1 {status} \
             AND (CAST($2 AS TEXT) IS NULL OR address > $2) ORDER BY address LIMIT $3"
        );
        // Audited: the only inserted fragment is a fixed status word.
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(page.cursor.as_deref())
            .bind(i64::from(page.limit))
            .fetch_all(self.sql_pool())
            .await?;
        Ok(Some(rows.into_iter().map(Into::into).collect()))
    }

    async fn begin_idempotent(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> StoreResult<IdempotencyBegin> {
        idempotency::begin(self.sql_pool(), key, request_hash).await
    }

    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()> {
        idempotency::abandon(self.sql_pool(), key).await
    }

    async fn purge_idempotency_keys(
        &self,
        before: chrono::DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        idempotency::purge(self.sql_pool(), before, limit).await
    }
}
