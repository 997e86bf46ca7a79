//! The SQL behind [`PipelineStore`], written once for both backends: one impl for every store
//! over a [`SqlPool`] whose [`Dialect`] is also a [`PipelineDialect`].
//!
//! The real differences are visible in two places: [`Dialect`] items (`row_lock` makes the
//! claim `FOR UPDATE SKIP LOCKED` on Postgres and a plain `UPDATE … RETURNING` on SQLite's
//! single writer; lists are bound as arrays or JSON text) and [`PipelineDialect`], implemented
//! in each backend's `pipeline.rs` (the multi-row MLS state statements, the range scan, and
//! `NOTIFY`/`LISTEN`). [`SqlPool::write_turn`] queues SQLite's hot writes within the process.
//!
//! The longer method bodies live beside this file, and the impl delegates to them: the claim
//! order (finding channels with due rows, claiming a batch) in `pipeline_claim_sql.rs`, the
//! sender lease and the MLS state rows it fences in `pipeline_state_sql.rs`, the XMTP write
//! budget in `pipeline_budget_sql.rs`, and settling in `settle_sql.rs`.

use std::collections::HashSet;
use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::domain::{Address, AnnouncementId, ChannelId};
use crate::store::dialect::{Dialect, SqlPool};
use crate::store::pipeline::*;
use crate::store::StoreResult;
use crate::store::{pipeline_budget_sql, pipeline_claim_sql, pipeline_state_sql, settle_sql};

/// What only one backend does in the pipeline, implemented in `postgres/pipeline.rs` and
/// `sqlite/pipeline.rs`.
pub(crate) trait PipelineDialect: Dialect {
    /// Applies a collapsed state batch (upserts, deletes; see [`split_batch`]) for `channel` on
    /// `conn`, inside the fenced transaction of [`PipelineStore::state_write`].
    fn write_state<'c>(
        conn: &'c mut Self::Connection,
        channel: &'c str,
        batch: (Entries, Vec<Vec<u8>>),
    ) -> impl Future<Output = StoreResult<()>> + Send + 'c;

    /// Every state entry of `channel` in any of the half-open `ranges`, in one statement (no
    /// order).
    fn scan_state_ranges<'c>(
        pool: &'c Pool<Self>,
        channel: &'c str,
        ranges: Vec<KeyRange>,
    ) -> impl Future<Output = StoreResult<Entries>> + Send + 'c;

    /// See [`PipelineStore::wake_others`].
    fn wake_others(pool: &Pool<Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// See [`PipelineStore::listen_others`].
    fn listen_others(
        pool: &Pool<Self>,
    ) -> impl Future<Output = StoreResult<Option<Box<dyn WakeListener>>>> + Send;
}

#[async_trait]
impl<S> PipelineStore for S
where
    S: SqlPool,
    S::Db: PipelineDialect,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Vec<u8>: Encode<'q, S::Db>,
    for<'q> String: Encode<'q, S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db>,
    for<'q> Option<String>: Encode<'q, S::Db>,
    for<'q> f64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i32: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, S::Db>,
    String: Type<S::Db>,
    Vec<u8>: Type<S::Db>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Vec<u8>,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Option<DateTime<Utc>>,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64, Option<i64>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Vec<u8>, Vec<u8>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> PaceRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64, String): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Option<String>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Vec<u8>, Option<String>, bool): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (f64, DateTime<Utc>, Option<DateTime<Utc>>, i64):
        FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (i64, String, String, i32): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn due_is_critical(&self, channel: &ChannelId, now: DateTime<Utc>) -> StoreResult<bool> {
        pipeline_claim_sql::due_is_critical(self, channel, now).await
    }

    async fn budget_get(&self, key: &str) -> StoreResult<Option<BudgetRow>> {
        pipeline_budget_sql::budget_get(self, key).await
    }

    async fn budget_put(&self, key: &str, row: &BudgetRow) -> StoreResult<bool> {
        pipeline_budget_sql::budget_put(self, key, row).await
    }

    async fn sender_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>> {
        pipeline_claim_sql::sender_candidates(self, now, limit).await
    }

    async fn acquire_sender(
        &self,
        channel: &ChannelId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SenderLease>> {
        pipeline_state_sql::acquire_sender(self, channel, owner, until, now).await
    }

    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
        pipeline_state_sql::renew_sender(self, lease, until).await
    }

    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        pipeline_state_sql::release_sender(self, lease, error, hold_until).await
    }

    async fn channel_secret(&self, channel: &ChannelId) -> StoreResult<Option<ChannelSecret>> {
        let row: Option<(String, Vec<u8>, Option<String>, bool)> = sqlx::query_as(
            "SELECT address, wallet_key_sealed, xmtp_inbox_id, deleted_at IS NOT NULL AS deleted FROM channels WHERE id = $1",
        )
        .bind(channel.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(
            |(address, wallet_key_sealed, inbox_id, deleted)| ChannelSecret {
                address: Address::from_trusted(address),
                wallet_key_sealed,
                inbox_id,
                deleted,
            },
        ))
    }

    async fn set_channel_identity(
        &self,
        channel: &ChannelId,
        inbox_id: &str,
        installation_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE channels SET xmtp_inbox_id = $2, xmtp_installation_id = $3 WHERE id = $1",
        )
        .bind(channel.as_str())
        .bind(inbox_id)
        .bind(installation_id)
        .execute(self.sql_pool())
        .await?;
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        lease: &SenderLease,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        pipeline_claim_sql::claim_deliveries(self, lease, now, until, limit).await
    }

    async fn active_subscribers(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<HashSet<Address>> {
        // Driven from the list: one primary-key probe per address, a plan that needs no
        // statistics. (As `address IN (list)`, Postgres with a freshly filled subscribers table
        // and no statistics yet joined every subscriber of the channel against every item of
        // the list: 5 million comparisons, ~180 ms per 500-row round at 10,000 subscribers.)
        let sql = format!(
            "SELECT list.value FROM {list} WHERE (SELECT s.status FROM subscribers s \
             WHERE s.channel_id = $1 AND s.address = list.value) = 'active'",
            list = S::Db::text_rows(2),
        );
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(addresses.iter().map(Address::as_str)))
            .fetch_all(self.sql_pool())
            .await?;
        Ok(rows.into_iter().map(Address::from_trusted).collect())
    }

    async fn announcement_message(
        &self,
        id: &AnnouncementId,
    ) -> StoreResult<Option<(String, Option<crate::domain::RichContent>)>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT text, content FROM announcements WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.sql_pool())
                .await?;
        Ok(row.map(|(text, content)| {
            let content = crate::store::parse_content(content.as_deref());
            (text, content)
        }))
    }

    async fn claimed_pending(&self, lease: &SenderLease, ids: &[i64]) -> StoreResult<u64> {
        // One primary-key probe per listed id, a plan whatever the table's size or statistics:
        // as `id IN (list) AND status = 'pending'`, Postgres read every row of a small table
        // (3-6 ms per 500-row batch in the broadcast bench, growing with the table) or,
        // with statistics saying nothing is pending, the claim-order index.
        let sql = format!(
            "SELECT COUNT(*) FROM {ids} WHERE (SELECT d.status FROM deliveries d \
             WHERE d.id = list.value AND d.channel_id = $2 AND d.lease_token = $3) = 'pending'",
            ids = S::Db::int_rows(1),
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(S::Db::int_list(ids.iter().copied()))
            .bind(lease.channel.as_str())
            .bind(lease.token.to_string())
            .fetch_one(self.sql_pool())
            .await?;
        Ok(n as u64)
    }

    async fn settle(
        &self,
        lease: &SenderLease,
        results: &[(i64, SettleOutcome)],
        now: DateTime<Utc>,
    ) -> StoreResult<Settled> {
        let _turn = self.write_turn().await;
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let settled = settle_sql::settle::<S::Db>(&mut tx, lease, results, now).await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn announcement_pace(&self, id: &AnnouncementId) -> StoreResult<Option<Pace>> {
        let row: Option<PaceRow> = sqlx::query_as(
            "SELECT topic, COALESCE(pace_at, created_at) AS since, \
             CAST(delivered_count + failed_count + skipped_count - pace_settled AS BIGINT) \
               AS settled_since, settled_at FROM announcements WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(|r| Pace {
            topic: r.topic,
            since: r.since,
            settled_since: r.settled_since,
            settled_at: r.settled_at,
        }))
    }

    async fn oldest_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            // The last condition is always true; it is the `deliveries_due` index's own
            // (migrations/postgres/0020), stated so that this query may use the index.
            "SELECT MIN(next_attempt_at) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 AND next_attempt_at < 'infinity'",
        )
        .bind(now)
        .fetch_one(self.sql_pool())
        .await?)
    }

    async fn wake_others(&self) -> StoreResult<()> {
        S::Db::wake_others(self.sql_pool()).await
    }

    async fn listen_others(&self) -> StoreResult<Option<Box<dyn WakeListener>>> {
        S::Db::listen_others(self.sql_pool()).await
    }

    async fn state_get(&self, channel: &ChannelId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        pipeline_state_sql::state_get(self, channel, key).await
    }

    async fn state_scan(
        &self,
        channel: &ChannelId,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        pipeline_state_sql::state_scan(self, channel, prefix).await
    }

    async fn state_scan_many(
        &self,
        channel: &ChannelId,
        prefixes: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        pipeline_state_sql::state_scan_many(self, channel, prefixes).await
    }

    async fn state_write(
        &self,
        lease: &SenderLease,
        batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> StoreResult<bool> {
        pipeline_state_sql::state_write(self, lease, batch).await
    }
}
