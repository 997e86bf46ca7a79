//! The SQL behind [`WebhookStore`](super::WebhookStore), written once for both backends: one
//! impl for every store over a [`SqlPool`] of a [`Dialect`]. The endpoints and their attempt
//! log are here; reading the event sources is in `webhooks_capture_sql.rs`, and the outbox and
//! attempt queue (recording events, claiming, settling, purging) in `webhooks_queue_sql.rs`.

use chrono::{DateTime, Utc};
use sqlx::{Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::dialect::{Dialect, SqlPool};
use super::webhooks::*;
use super::webhooks_capture_sql::{CompletedRow, ConsentRow, FailedRow, MatchRow};
use super::webhooks_queue_sql::{self, ClaimRow};
use super::StoreResult;
use crate::domain::TenantId;

type Row<DB> = <DB as sqlx::Database>::Row;

/// An endpoint as read: id, url, description, event types (JSON), previous_until, created,
/// updated.
type EndpointRow = (
    String,
    String,
    Option<String>,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

const ENDPOINT_COLUMNS: &str =
    "id, url, description, event_types, previous_until, created_at, updated_at";

/// `(attempt, event, type, status, attempts, code, error, next at, created, updated)`.
type LogRow = (
    i64,
    String,
    String,
    String,
    i32,
    Option<i32>,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn endpoint_from(row: EndpointRow) -> WebhookEndpoint {
    let (id, url, description, types, previous_until, created_at, updated_at) = row;
    WebhookEndpoint {
        id,
        url,
        description,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        previous_until,
        created_at,
        updated_at,
    }
}

fn types_json(types: &[String]) -> String {
    serde_json::to_string(types).expect("a list of strings always serializes")
}

#[async_trait::async_trait]
impl<S> WebhookStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<i32>: Encode<'q, S::Db>,
    Option<i32>: Type<S::Db>,
    for<'q> Option<String>: Encode<'q, S::Db>,
    Option<String>: Type<S::Db>,
    for<'r> String: Decode<'r, S::Db> + Type<S::Db>,
    for<'r> DateTime<Utc>: Decode<'r, S::Db>,
    for<'r> EndpointRow: FromRow<'r, Row<S::Db>>,
    for<'r> CompletedRow: FromRow<'r, Row<S::Db>>,
    for<'r> FailedRow: FromRow<'r, Row<S::Db>>,
    for<'r> ConsentRow: FromRow<'r, Row<S::Db>>,
    for<'r> MatchRow: FromRow<'r, Row<S::Db>>,
    for<'r> ClaimRow: FromRow<'r, Row<S::Db>>,
    for<'r> LogRow: FromRow<'r, Row<S::Db>>,
    for<'r> (DateTime<Utc>, String): FromRow<'r, Row<S::Db>>,
    for<'r> (DateTime<Utc>,): FromRow<'r, Row<S::Db>>,
    for<'r> (String,): FromRow<'r, Row<S::Db>>,
{
    async fn create_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        max: u32,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let now = Utc::now();
        // Count and insert under the tenant row's lock, so concurrent creates cannot pass
        // the cap (Postgres runs READ COMMITTED; SQLite's write transaction is exclusive).
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
            .bind(new.tenant.as_str())
            .execute(&mut *tx)
            .await?;
        let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, \
             secret_sealed, created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
             WHERE (SELECT COUNT(*) FROM webhook_endpoints \
                    WHERE tenant_id = $2 AND deleted_at IS NULL) < $8 \
             RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(new.id.as_str())
        .bind(new.tenant.as_str())
        .bind(new.url.as_str())
        .bind(new.description.clone())
        .bind(types_json(&new.event_types).as_str())
        .bind(new.secret_sealed.as_slice())
        .bind(now)
        .bind(i64::from(max))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(endpoint_from))
    }

    async fn list_webhook_endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows: Vec<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id"
        )))
        .bind(tenant.as_str())
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(endpoint_from).collect())
    }

    async fn get_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        )))
        .bind(id)
        .bind(tenant.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(endpoint_from))
    }

    async fn update_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &str,
        patch: &WebhookEndpointPatch,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        let current: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        )))
        .bind(id)
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current.map(endpoint_from) else {
            return Ok(None);
        };
        let url = patch.url.clone().unwrap_or(current.url);
        let description = patch.description.clone().unwrap_or(current.description);
        let types = patch.event_types.clone().unwrap_or(current.event_types);
        let row: EndpointRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, \
             updated_at = $6 WHERE id = $1 AND tenant_id = $2 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id)
        .bind(tenant.as_str())
        .bind(url.as_str())
        .bind(description)
        .bind(types_json(&types).as_str())
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(endpoint_from(row)))
    }

    async fn delete_webhook_endpoint(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let now = Utc::now();
        let mut tx = <S::Db as Dialect>::begin_write(self.sql_pool()).await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $3, updated_at = $3 \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let deleted = S::Db::rows_affected(&done) == 1;
        if deleted {
            sqlx::query(
                "UPDATE webhook_attempts SET status = 'failed', last_error = 'endpoint deleted', \
                 lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                 WHERE endpoint_id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &str,
        new_sealed: &[u8],
        previous_until: DateTime<Utc>,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
             secret_sealed = $3, previous_until = $4, updated_at = $5 \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL \
             RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id)
        .bind(tenant.as_str())
        .bind(new_sealed)
        .bind(previous_until)
        .bind(Utc::now())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(endpoint_from))
    }

    async fn list_webhook_attempts(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<WebhookAttemptLog>>> {
        if self.get_webhook_endpoint(tenant, endpoint).await?.is_none() {
            return Ok(None);
        }
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT w.id, w.event_id, e.event_type, w.status, w.attempts, w.last_status_code, \
             w.last_error, w.next_attempt_at, w.created_at, w.updated_at \
             FROM webhook_attempts w JOIN webhook_events e ON e.id = w.event_id \
             WHERE w.endpoint_id = $1 AND w.id < $2 ORDER BY w.id DESC LIMIT $3",
        )
        .bind(endpoint)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.sql_pool())
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|r| WebhookAttemptLog {
                    id: r.0,
                    event_id: r.1,
                    event_type: r.2,
                    next_attempt_at: (r.3 == "pending").then_some(r.7),
                    status: r.3,
                    attempts: r.4,
                    last_status_code: r.5,
                    last_error: r.6,
                    created_at: r.8,
                    updated_at: r.9,
                })
                .collect(),
        ))
    }

    async fn read_webhook_source(
        &self,
        source: EventSource,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<CapturedEvent>> {
        super::webhooks_capture_sql::read_source(self.sql_pool(), source, until, limit).await
    }

    async fn record_webhook_events(
        &self,
        source: EventSource,
        events: &[CapturedEvent],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        webhooks_queue_sql::record_events(self.sql_pool(), source, events, now).await
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedWebhook>> {
        webhooks_queue_sql::claim(self.sql_pool(), owner, now, lease_until, limit).await
    }

    async fn purge_webhook_history(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        webhooks_queue_sql::purge(self.sql_pool(), before, limit).await
    }

    async fn settle_webhook(
        &self,
        attempt_id: i64,
        owner: &str,
        outcome: &WebhookSettle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        webhooks_queue_sql::settle(self.sql_pool(), attempt_id, owner, outcome, now).await
    }
}
