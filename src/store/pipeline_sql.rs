//! The SQL behind [`PipelineStore`], written once for both backends: one impl for every store
//! over a [`SqlPool`] whose [`Dialect`] is also a [`PipelineDialect`].
//!
//! The real differences are visible in two places: [`Dialect`] items (`row_lock` makes the
//! claim `FOR UPDATE SKIP LOCKED` on Postgres and a plain `UPDATE … RETURNING` on SQLite's
//! single writer; lists are bound as arrays or JSON text) and [`PipelineDialect`], implemented
//! in each backend's `pipeline.rs` (the multi-row MLS state statements, the range scan, and
//! `NOTIFY`/`LISTEN`). [`SqlPool::write_turn`] queues SQLite's hot writes within the process.

use std::collections::HashSet;
use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::domain::{Address, AnnouncementId, ChannelId};
use crate::store::dialect::{Dialect, RowLock, SqlPool};
use crate::store::pipeline::*;
use crate::store::settle_sql;
use crate::store::StoreResult;

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
        // The first due row in claim order is critical exactly when any due row is.
        let rank: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(due_probe("$1", "$2", 0)))
            .bind(channel.as_str())
            .bind(now)
            .fetch_optional(self.sql_pool())
            .await?;
        Ok(rank.is_some())
    }

    async fn budget_get(&self, key: &str) -> StoreResult<Option<BudgetRow>> {
        let row: Option<(f64, DateTime<Utc>, Option<DateTime<Utc>>, i64)> = sqlx::query_as(
            "SELECT tokens, refilled_at, paused_until, version FROM xmtp_budgets WHERE budget_key = $1",
        )
        .bind(key)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(
            row.map(|(tokens, refilled_at, paused_until, version)| BudgetRow {
                tokens,
                refilled_at,
                paused_until,
                version,
            }),
        )
    }

    async fn budget_put(&self, key: &str, row: &BudgetRow) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = if row.version == 1 {
            sqlx::query(
                "INSERT INTO xmtp_budgets (budget_key, tokens, refilled_at, paused_until, version) \
                 VALUES ($1, $2, $3, $4, 1) ON CONFLICT (budget_key) DO NOTHING",
            )
            .bind(key)
            .bind(row.tokens)
            .bind(row.refilled_at)
            .bind(row.paused_until)
            .execute(self.sql_pool())
            .await?
        } else {
            sqlx::query(
                "UPDATE xmtp_budgets SET tokens = $2, refilled_at = $3, paused_until = $4, version = $5 \
                 WHERE budget_key = $1 AND version = $6",
            )
            .bind(key)
            .bind(row.tokens)
            .bind(row.refilled_at)
            .bind(row.paused_until)
            .bind(row.version)
            .bind(row.version - 1)
            .execute(self.sql_pool())
            .await?
        };
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn sender_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>> {
        // The channels with pending rows, found by skipping through the claim-order index
        // (one probe per channel), each ranked by its first due row in claim order. Grouping
        // every due row instead cost a scan of the whole backlog per poll (34 ms at 80,000
        // pending rows on Postgres, most of its CPU in the REST bench; issue 15). The ranks are
        // computed once per channel (MATERIALIZED: the filter and the sort each re-ran them).
        let sql = format!(
            "WITH RECURSIVE pending_channels(channel_id) AS ( \
               SELECT (SELECT channel_id FROM deliveries WHERE status = 'pending' \
                       ORDER BY channel_id LIMIT 1) \
               UNION ALL \
               SELECT (SELECT d.channel_id FROM deliveries d \
                       WHERE d.status = 'pending' AND d.channel_id > p.channel_id \
                       ORDER BY d.channel_id LIMIT 1) \
               FROM pending_channels p WHERE p.channel_id IS NOT NULL) \
             , ranked AS MATERIALIZED ( \
               SELECT p.channel_id, {rank} AS r FROM pending_channels p \
               WHERE p.channel_id IS NOT NULL) \
             SELECT channel_id FROM ranked WHERE r IS NOT NULL ORDER BY r, channel_id LIMIT $2",
            rank = first_due_rank("p.channel_id", "$1"),
        );
        let mut ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(self.sql_pool())
            .await?;
        let unregistered: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM channels WHERE xmtp_inbox_id IS NULL AND deleted_at IS NULL LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.sql_pool())
        .await?;
        ids.extend(unregistered);
        Ok(ids.into_iter().map(ChannelId::from_trusted).collect())
    }

    async fn acquire_sender(
        &self,
        channel: &ChannelId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SenderLease>> {
        let _turn = self.write_turn().await;
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "INSERT INTO channel_senders (channel_id, lease_owner, lease_until, lease_token, updated_at) \
             VALUES ($1, $2, $3, 1, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET lease_owner = excluded.lease_owner, \
               lease_until = excluded.lease_until, lease_token = channel_senders.lease_token + 1, \
               updated_at = excluded.updated_at \
             WHERE channel_senders.lease_until IS NULL OR channel_senders.lease_until < $4 \
                OR channel_senders.lease_owner = $2 \
             RETURNING lease_token, state_token",
        )
        .bind(channel.as_str())
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(|(token, state_token)| SenderLease {
            channel: channel.clone(),
            owner: owner.to_owned(),
            token,
            state_token,
        }))
    }

    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE channel_senders SET lease_until = $3 WHERE channel_id = $1 AND lease_token = $2",
        )
        .bind(lease.channel.as_str())
        .bind(lease.token)
        .bind(until)
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE channel_senders SET lease_owner = NULL, lease_until = $5, last_error = $3, updated_at = $4 \
             WHERE channel_id = $1 AND lease_token = $2",
        )
        .bind(lease.channel.as_str())
        .bind(lease.token)
        .bind(error)
        .bind(Utc::now())
        .bind(hold_until)
        .execute(self.sql_pool())
        .await?;
        Ok(())
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
        // Postgres: concurrent workers pass over each other's rows instead of blocking;
        // SQLite: one writer at a time, so the plain `UPDATE … RETURNING` suffices.
        //
        // A batch takes rows of one rank only: the most urgent rank with a claimable row
        // (probed in the claim-order index), then by id, so the batch is read off the front
        // of the index whatever the statistics say. `ORDER BY rank, id` over all ranks was
        // planned without statistics (a fresh database, its first minute or so) as a bitmap
        // scan of every pending row of the channel and a sort: 110 ms per 500-row claim at
        // 140,000 pending in the REST bench (issue 15), which kept the worker from catching up.
        let sql = format!(
            "UPDATE deliveries SET lease_owner = $2, lease_token = $3, lease_until = $4 \
             WHERE id IN (SELECT id FROM deliveries WHERE channel_id = $1 AND status = 'pending' \
               AND {RANK} = COALESCE({critical}, {normal}, 2) \
               AND {due} AND (lease_until IS NULL OR lease_until < $5) \
               ORDER BY id LIMIT $6 {lock}) \
             RETURNING id, announcement_id, address, attempts",
            critical = claimable_probe(0),
            normal = claimable_probe(1),
            due = due_at("next_attempt_at", "$5"),
            lock = S::Db::row_lock(RowLock::UpdateSkipLocked),
        );
        let _turn = self.write_turn().await;
        let rows: Vec<(i64, String, String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lease.channel.as_str())
            .bind(&lease.owner)
            .bind(lease.token.to_string())
            .bind(until)
            .bind(now)
            .bind(limit)
            .fetch_all(self.sql_pool())
            .await?;
        let mut claimed: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(|(id, announcement, address, attempts)| ClaimedDelivery {
                id,
                announcement_id: AnnouncementId::from_trusted(announcement),
                address: Address::from_trusted(address),
                attempts,
            })
            .collect();
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
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
        Ok(
            sqlx::query_scalar(
                "SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2",
            )
            .bind(channel.as_str())
            .bind(key)
            .fetch_optional(self.sql_pool())
            .await?,
        )
    }

    async fn state_scan(
        &self,
        channel: &ChannelId,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let rows = match prefix_end(prefix) {
            Some(end) => sqlx::query_as(
                "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 AND key < $3 ORDER BY key",
            )
            .bind(channel.as_str())
            .bind(prefix)
            .bind(end)
            .fetch_all(self.sql_pool())
            .await?,
            None => sqlx::query_as(
                "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 ORDER BY key",
            )
            .bind(channel.as_str())
            .bind(prefix)
            .fetch_all(self.sql_pool())
            .await?,
        };
        Ok(rows)
    }

    async fn state_scan_many(
        &self,
        channel: &ChannelId,
        prefixes: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let (ranges, open_ended) = prefix_ranges(prefixes);
        let mut rows = S::Db::scan_state_ranges(self.sql_pool(), channel.as_str(), ranges).await?;
        for prefix in open_ended {
            rows.extend(self.state_scan(channel, prefix).await?);
        }
        Ok(rows)
    }

    async fn state_write(
        &self,
        lease: &SenderLease,
        batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> StoreResult<bool> {
        // The fencing check and the writes share one write transaction: on Postgres the row
        // lock holds off a takeover until this batch is committed, on SQLite the write lock
        // does (a mismatch rolls the state_token update back with the transaction).
        let _turn = self.write_turn().await;
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let current: Option<i64> = sqlx::query_scalar(
            "UPDATE channel_senders SET state_token = lease_token WHERE channel_id = $1 RETURNING lease_token",
        )
        .bind(lease.channel.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(lease.token) {
            return Ok(false);
        }
        S::Db::write_state(&mut *tx, lease.channel.as_str(), split_batch(batch)).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The claim rank of the first due pending delivery of `channel` (a column or parameter) at
/// `now`, NULL when it has none: one probe of the claim-order index (channel, rank, id) per
/// rank, most urgent first. Probing each rank (rather than `ORDER BY rank, id LIMIT 1`) keeps
/// the plan without statistics, as in a fresh database: Postgres then sorted every pending row
/// of the channel to find the first (67 ms at 100,000 pending in the REST bench; issue 15).
fn first_due_rank(channel: &str, now: &str) -> String {
    let probe = |rank| format!("({})", due_probe(channel, now, rank));
    format!("COALESCE({}, {}, {})", probe(0), probe(1), probe(2))
}

/// A scalar subquery: `rank` when the claim's channel (`$1`) has a due pending delivery of that
/// rank at `$5` that no lease holds, else NULL. One probe of the claim-order index.
fn claimable_probe(rank: u8) -> String {
    format!(
        "(SELECT {rank} FROM deliveries d WHERE d.channel_id = $1 AND {RANK} = {rank} \
         AND d.status = 'pending' AND {due} \
         AND (d.lease_until IS NULL OR d.lease_until < $5) LIMIT 1)",
        due = due_at("d.next_attempt_at", "$5"),
    )
}

/// A query returning `rank` when `channel` has a due pending delivery of that rank at `now`,
/// no row otherwise: one probe of the claim-order index.
fn due_probe(channel: &str, now: &str, rank: u8) -> String {
    format!(
        "SELECT {rank} FROM deliveries d WHERE d.channel_id = {channel} AND {RANK} = {rank} \
         AND d.status = 'pending' AND {due} LIMIT 1",
        due = due_at("d.next_attempt_at", now),
    )
}

/// `column <= now`, spelled so that no index can serve it: a `COALESCE` is not an index
/// condition on either backend. The claim and its probes must read the claim-order index
/// (channel, rank, id), but `next_attempt_at <= now` also matches the index `deliveries_due`
/// (pending rows by due time), and Postgres took that one whenever its statistics said few
/// rows were pending, as they do when last gathered in a quiet moment: each 500-row claim then
/// read every pending row of every channel and sorted them (11 ms per claim, slower each round,
/// in a 10,000-recipient broadcast), and a probe for a rank with no rows read them all too.
fn due_at(column: &str, now: &str) -> String {
    format!("COALESCE({column} <= {now}, FALSE)")
}
