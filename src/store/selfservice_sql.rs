//! The SQL behind [`SelfServiceStore`](super::SelfServiceStore), written once for both backends:
//! one impl for every store over a [`SqlPool`] of a [`Dialect`].
//!
//! Every statement is portable (`CAST($n AS TEXT)` instead of `$n::text`, booleans bound as
//! `bool`, timestamps bound as `DateTime<Utc>`); a list of addresses is bound with
//! [`Dialect::text_list`] and read as rows with [`Dialect::text_rows`].

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use super::dialect::{Dialect, SqlPool};
use super::subscribers_sql;
use super::*;

/// Appends one consent log entry (inside the caller's transaction).
pub(super) async fn log_entry<'e, DB>(
    executor: impl Executor<'e, Database = DB>,
    channel: &ChannelId,
    address: &Address,
    action: ConsentAction,
    topic: Option<&str>,
    context: &ConsentContext,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ulid::Ulid::new().to_string())
    .bind(channel.as_str())
    .bind(address.as_str())
    .bind(action.as_str())
    .bind(topic)
    .bind(context.source.as_str())
    .bind(context.evidence.as_deref())
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Logs `action` when the change it describes happened, then commits the change.
async fn commit_logged<DB>(
    mut tx: Transaction<'static, DB>,
    changed: bool,
    channel: &ChannelId,
    address: &Address,
    action: ConsentAction,
    context: &ConsentContext,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    if changed {
        log_entry(&mut *tx, channel, address, action, None, context, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl<S> SelfServiceStore for S
where
    S: SqlPool + TopicStore + InboundStore,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Dialect>::TextList: 'static,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> String: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Option<DateTime<Utc>>,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String, DateTime<Utc>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String, DateTime<Utc>, DateTime<Utc>, Option<String>):
        FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> ConsentRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn live_channel_tenant(&self, channel: &ChannelId) -> StoreResult<Option<TenantId>> {
        let tenant: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM channels WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(channel.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(tenant.map(TenantId::from_trusted))
    }

    async fn use_nonce(
        &self,
        nonce: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<NonceUse> {
        let row: Option<(String, String, DateTime<Utc>, DateTime<Utc>, Option<String>)> =
            sqlx::query_as(
                "UPDATE siwe_nonces SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL \
                 AND (message IS NULL OR message = $3) \
                 RETURNING channel_id, address, issued_at, expires_at, message",
            )
            .bind(nonce)
            .bind(now)
            .bind(message)
            .fetch_optional(self.sql_pool())
            .await?;
        if let Some((channel, address, issued_at, expires_at, message)) = row {
            return Ok(NonceUse::Consumed {
                channel: ChannelId::from_trusted(channel),
                address: Address::from_trusted(address),
                issued_at,
                expires_at,
                message,
            });
        }
        let used: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT used_at FROM siwe_nonces WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(self.sql_pool())
                .await?;
        Ok(match used {
            None => NonceUse::Unknown,
            Some(Some(_)) => NonceUse::Replayed,
            Some(None) => NonceUse::Mismatch,
        })
    }

    async fn purge_expired_nonces(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM siwe_nonces WHERE expires_at < $1")
            .bind(before)
            .execute(self.sql_pool())
            .await?;
        Ok(S::Db::rows_affected(&done))
    }

    async fn subscribe_with_consent(
        &self,
        channel: &ChannelId,
        address: &Address,
        context: &ConsentContext,
    ) -> StoreResult<SubscribeOutcome> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let outcome =
            subscribers_sql::subscribe_in::<_, S::Db>(&mut *tx, channel, address, now).await?;
        let changed = outcome != SubscribeOutcome::AlreadyActive;
        commit_logged(
            tx,
            changed,
            channel,
            address,
            ConsentAction::Subscribe,
            context,
            now,
        )
        .await?;
        Ok(outcome)
    }

    async fn unsubscribe_with_consent(
        &self,
        channel: &ChannelId,
        address: &Address,
        context: &ConsentContext,
    ) -> StoreResult<bool> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let done = subscribers_sql::unsubscribe::<S::Db>(&mut *tx, channel, address, now).await?;
        commit_logged(
            tx,
            done,
            channel,
            address,
            ConsentAction::Unsubscribe,
            context,
            now,
        )
        .await?;
        Ok(done)
    }

    async fn subscribe_many_with_consent(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
        context: &ConsentContext,
    ) -> StoreResult<BatchOutcome> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        // The upsert's RETURNING lists only rows it inserted or re-activated (a conflict its
        // WHERE skips returns nothing): exactly the changes to log. `WHERE true` lets SQLite
        // parse the upsert after `INSERT … SELECT`.
        let sql = format!(
            "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
             SELECT $1, value, 'active', $3, $3 FROM {rows} \
             WHERE true ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', \
             updated_at = $3 WHERE subscribers.status <> 'active' RETURNING address",
            rows = S::Db::text_rows(2),
        );
        let changed: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(addresses.iter().map(Address::as_str)))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
             SELECT $3 || ':' || value, $1, value, 'subscribe', NULL, $4, $5, $6 FROM {rows}",
            rows = S::Db::text_rows(2),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(changed.iter().map(String::as_str)))
            .bind(ulid::Ulid::new().to_string())
            .bind(context.source.as_str())
            .bind(context.evidence.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let added = changed.len() as u64;
        Ok(BatchOutcome {
            added,
            already: addresses.len() as u64 - added,
        })
    }

    async fn log_consent_many(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
        action: ConsentAction,
        context: &ConsentContext,
    ) -> StoreResult<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        // One ULID for the batch plus the (unique) address keeps ids unique and in time order
        // relative to other entries.
        let sql = format!(
            "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
             SELECT $3 || ':' || value, $1, value, $4, NULL, $5, $6, $7 FROM {rows}",
            rows = S::Db::text_rows(2),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(addresses.iter().map(Address::as_str)))
            .bind(ulid::Ulid::new().to_string())
            .bind(action.as_str())
            .bind(context.source.as_str())
            .bind(context.evidence.as_deref())
            .bind(Utc::now())
            .execute(self.sql_pool())
            .await?;
        Ok(())
    }

    async fn consent_history(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let rows: Vec<ConsentRow> = sqlx::query_as(
            "SELECT id, address, action, topic, source, evidence, created_at FROM consent_log \
             WHERE channel_id = $1 AND address = $2 ORDER BY id",
        )
        .bind(channel.as_str())
        .bind(address.as_str())
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(ConsentRow::into_record).collect())
    }

    async fn consent_export(
        &self,
        channel: &ChannelId,
        cursor: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let rows: Vec<ConsentRow> = sqlx::query_as(
            "SELECT id, address, action, topic, source, evidence, created_at FROM consent_log \
             WHERE channel_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(channel.as_str())
        .bind(cursor)
        .bind(i64::from(limit))
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(ConsentRow::into_record).collect())
    }

    async fn subscriber_status(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT status FROM subscribers WHERE channel_id = $1 AND address = $2",
        )
        .bind(channel.as_str())
        .bind(address.as_str())
        .fetch_optional(self.sql_pool())
        .await?)
    }
}
