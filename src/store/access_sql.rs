//! The SQL behind [`AccessStore`](super::AccessStore), written once for both backends: one
//! impl for every store over a [`SqlPool`] of a [`Dialect`].

use chrono::{DateTime, Utc};
use sqlx::{Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::access::ApiKeyRow;
use super::dialect::{Dialect, SqlPool};
use super::*;

#[async_trait::async_trait]
impl<S> AccessStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> bool: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<String>: Encode<'q, S::Db>,
    Option<String>: Type<S::Db>,
    for<'r> i32: Decode<'r, S::Db> + Type<S::Db>,
    for<'r> i64: Decode<'r, S::Db>,
    for<'r> String: Decode<'r, S::Db> + Type<S::Db>,
    for<'r> (String, String, Option<DateTime<Utc>>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> ApiKeyRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String, DateTime<Utc>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (
        String,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        Option<String>,
        Option<DateTime<Utc>>,
    ): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn api_key_owner(&self, key_hash: &str) -> StoreResult<Option<KeyOwner>> {
        let row: Option<(String, String, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
            "SELECT tenant_id, id, last_used_at FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(|(tenant, id, last_used_at)| KeyOwner {
            tenant: TenantId::from_trusted(tenant),
            key: ApiKeyId::from_trusted(id),
            last_used_at,
        }))
    }

    async fn touch_api_key(
        &self,
        key: &ApiKeyId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(key.as_str())
            .bind(now)
            .execute(self.sql_pool())
            .await?;
        Ok(())
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> StoreResult<bool> {
        let hit: Option<i32> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(self.sql_pool())
            .await?;
        Ok(hit.is_some())
    }

    async fn create_api_key(
        &self,
        key: &NewApiKey,
        max_active: u32,
    ) -> StoreResult<Option<ApiKey>> {
        let limit = if max_active == 0 {
            i64::MAX
        } else {
            i64::from(max_active)
        };
        // The count and the insert run under the tenant row's lock: on Postgres two
        // concurrent creates would otherwise both count below the cap (READ COMMITTED).
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        lock_row(&mut tx, LOCK_TENANT, key.tenant.as_str()).await?;
        let row: Option<crate::store::access::ApiKeyRow> = sqlx::query_as(
            "INSERT INTO api_keys (id, key_hash, tenant_id, name, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM api_keys \
             WHERE tenant_id = $3 AND revoked_at IS NULL) < $6 \
             RETURNING id, name, created_at, last_used_at",
        )
        .bind(key.id.as_str())
        .bind(key.key_hash.as_str())
        .bind(key.tenant.as_str())
        .bind(&key.name)
        .bind(chrono::Utc::now())
        .bind(limit)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(Into::into))
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<crate::store::access::ApiKeyRow> = sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM api_keys \
             WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(tenant.as_str())
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key: &ApiKeyId,
        keep_one: bool,
    ) -> StoreResult<KeyRevoke> {
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        let revoked: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL \
             AND (NOT $4 OR (SELECT COUNT(*) FROM api_keys \
                             WHERE tenant_id = $2 AND revoked_at IS NULL) > 1) \
             RETURNING key_hash",
        )
        .bind(key.as_str())
        .bind(tenant.as_str())
        .bind(chrono::Utc::now())
        .bind(keep_one)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match revoked {
            Some(key_hash) => KeyRevoke::Revoked { key_hash },
            None => {
                let active: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM api_keys \
                     WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                )
                .bind(key.as_str())
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if active.is_some() {
                    KeyRevoke::LastKey
                } else {
                    KeyRevoke::NotFound
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn active_subscriber_count(&self, tenant: &TenantId) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers s JOIN channels c ON c.id = s.channel_id \
             WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND s.status = 'active'",
        )
        .bind(tenant.as_str())
        .fetch_one(self.sql_pool())
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn channel_subscriber_count(&self, channel: &ChannelId) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers WHERE channel_id = $1 AND status = 'active'",
        )
        .bind(channel.as_str())
        .fetch_one(self.sql_pool())
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn unfinished_recipient_count(&self, tenant: &TenantId) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(a.total), 0) AS BIGINT) FROM announcements a \
             JOIN channels c ON c.id = a.channel_id \
             WHERE a.tenant_id = $1 AND a.status <> 'completed' AND c.deleted_at IS NULL",
        )
        .bind(tenant.as_str())
        .fetch_one(self.sql_pool())
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn issue_nonce(
        &self,
        n: &NewNonce,
        reuse_valid_at: DateTime<Utc>,
        max_outstanding: u32,
    ) -> StoreResult<NonceIssue> {
        let limit = if max_outstanding == 0 {
            i64::MAX
        } else {
            i64::from(max_outstanding)
        };
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        lock_row(&mut tx, LOCK_CHANNEL, n.channel.as_str()).await?;
        let open: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT nonce, message, expires_at FROM siwe_nonces \
             WHERE channel_id = $1 AND address = $2 AND used_at IS NULL \
             AND expires_at > $3 AND message IS NOT NULL ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(n.channel.as_str())
        .bind(n.address.as_str())
        .bind(reuse_valid_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((nonce, message, expires_at)) = open {
            tx.commit().await?;
            return Ok(NonceIssue::Existing(OutstandingNonce {
                nonce,
                message,
                expires_at,
            }));
        }
        let stored: Option<String> = sqlx::query_scalar(
            "INSERT INTO siwe_nonces (nonce, channel_id, address, issued_at, expires_at, message) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT COUNT(*) FROM siwe_nonces \
             WHERE channel_id = $2 AND used_at IS NULL AND expires_at > $4) < $7 \
             RETURNING nonce",
        )
        .bind(n.nonce.as_str())
        .bind(n.channel.as_str())
        .bind(n.address.as_str())
        .bind(n.issued_at)
        .bind(n.expires_at)
        .bind(n.message.as_str())
        .bind(limit)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if stored.is_some() {
            NonceIssue::Issued
        } else {
            NonceIssue::ChannelFull
        })
    }

    async fn issued_nonce(&self, nonce: &str) -> StoreResult<Option<IssuedNonce>> {
        type Row = (
            String,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT channel_id, address, issued_at, expires_at, message, used_at \
             FROM siwe_nonces WHERE nonce = $1",
        )
        .bind(nonce)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(
            |(channel, address, issued_at, expires_at, message, used_at)| IssuedNonce {
                channel: ChannelId::from_trusted(channel),
                address: Address::from_trusted(address),
                issued_at,
                expires_at,
                message,
                used: used_at.is_some(),
            },
        ))
    }

    async fn trigger_tenant(&self, trigger_id: &str) -> StoreResult<Option<TenantId>> {
        let tenant: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM triggers WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(trigger_id)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(tenant.map(TenantId::from_trusted))
    }
}

/// Locks a tenant row until the transaction ends (see [`lock_row`]).
const LOCK_TENANT: &str = "UPDATE tenants SET name = name WHERE id = $1";
/// Locks a channel row until the transaction ends (see [`lock_row`]).
const LOCK_CHANNEL: &str = "UPDATE channels SET name = name WHERE id = $1";

/// Locks one parent row until the transaction ends, with portable SQL: a no-op update takes
/// the row lock on Postgres (concurrent writers of the row wait for the commit, and their
/// next statement sees what it wrote); on SQLite the write transaction is exclusive already.
async fn lock_row<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    sql: &'static str,
    id: &str,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}
