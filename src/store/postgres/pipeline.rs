//! Postgres implementation of [`PipelineStore`]. Claims use `FOR UPDATE SKIP LOCKED` so
//! concurrent workers never block on each other's rows; lists travel as arrays. Work arrival is
//! broadcast with `NOTIFY herald_deliveries` so workers in other replicas wake at once.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PgStore;
use crate::domain::ChannelId;
use crate::store::pipeline::*;
use crate::store::StoreResult;

/// Queries written once for both backends.
mod shared {
    use chrono::{DateTime, Utc};
    use sqlx::Row as _;

    use crate::domain::ChannelId;
    use crate::store::pipeline::*;
    use crate::store::StoreResult;

    shared_pipeline_sql!(sqlx::PgPool);
}

#[async_trait]
impl PipelineStore for PgStore {
    async fn budget_get(&self, key: &str) -> StoreResult<Option<BudgetRow>> {
        let row: Option<(f64, DateTime<Utc>, Option<DateTime<Utc>>, i64)> = sqlx::query_as(
            "SELECT tokens, refilled_at, paused_until, version FROM xmtp_budgets WHERE budget_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
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
        let done = if row.version == 1 {
            sqlx::query(
                "INSERT INTO xmtp_budgets (budget_key, tokens, refilled_at, paused_until, version) \
                 VALUES ($1, $2, $3, $4, 1) ON CONFLICT (budget_key) DO NOTHING",
            )
            .bind(key)
            .bind(row.tokens)
            .bind(row.refilled_at)
            .bind(row.paused_until)
            .execute(&self.pool)
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
            .execute(&self.pool)
            .await?
        };
        Ok(done.rows_affected() == 1)
    }

    async fn due_is_critical(&self, channel: &ChannelId, now: DateTime<Utc>) -> StoreResult<bool> {
        shared::due_is_critical(&self.pool, channel, now).await
    }

    async fn sender_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>> {
        shared::sender_candidates(&self.pool, now, limit).await
    }

    async fn acquire_sender(
        &self,
        channel: &ChannelId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SenderLease>> {
        shared::acquire_sender(&self.pool, channel, owner, until, now).await
    }

    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
        shared::renew_sender(&self.pool, lease, until).await
    }

    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        shared::release_sender(&self.pool, lease, error, hold_until).await
    }

    async fn channel_secret(&self, channel: &ChannelId) -> StoreResult<Option<ChannelSecret>> {
        shared::channel_secret(&self.pool, channel).await
    }

    async fn set_channel_identity(
        &self,
        channel: &ChannelId,
        inbox_id: &str,
        installation_id: &str,
    ) -> StoreResult<()> {
        shared::set_channel_identity(&self.pool, channel, inbox_id, installation_id).await
    }

    async fn claim_deliveries(
        &self,
        lease: &SenderLease,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let sql = format!(
            "UPDATE deliveries SET lease_owner = $2, lease_token = $3, lease_until = $4 \
             WHERE id IN (SELECT id FROM deliveries WHERE channel_id = $1 AND status = 'pending' \
               AND next_attempt_at <= $5 AND (lease_until IS NULL OR lease_until < $5) \
               ORDER BY {RANK}, id LIMIT $6 FOR UPDATE SKIP LOCKED) \
             RETURNING id, announcement_id, address, attempts"
        );
        let mut rows: Vec<ClaimedDelivery> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lease.channel.as_str())
            .bind(&lease.owner)
            .bind(lease.token.to_string())
            .bind(until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    async fn active_subscribers(
        &self,
        channel: &ChannelId,
        addresses: &[String],
    ) -> StoreResult<HashSet<String>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM subscribers WHERE channel_id = $1 AND status = 'active' \
             AND address = ANY($2)",
        )
        .bind(channel.as_str())
        .bind(addresses)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn announcement_text(&self, id: &str) -> StoreResult<Option<String>> {
        shared::announcement_text(&self.pool, id).await
    }

    async fn settle(
        &self,
        lease: &SenderLease,
        results: &[(i64, SettleOutcome)],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut settled = 0;
        for (outcome, ids) in group_outcomes(results) {
            let (status, reason, next, inc) = outcome.columns(now);
            settled += sqlx::query(
                "UPDATE deliveries SET status = $1, reason = $2, next_attempt_at = $3, attempts = attempts + $4, \
                   lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                 WHERE id = ANY($6) AND channel_id = $7 AND lease_token = $8",
            )
            .bind(status)
            .bind(reason)
            .bind(next)
            .bind(inc)
            .bind(now)
            .bind(&ids)
            .bind(lease.channel.as_str())
            .bind(lease.token.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let ids: Vec<i64> = results.iter().map(|(id, _)| *id).collect();
        sqlx::query(
            "UPDATE announcements SET updated_at = $1, status = CASE WHEN EXISTS (SELECT 1 FROM deliveries d \
               WHERE d.announcement_id = announcements.id AND d.status = 'pending') THEN 'sending' ELSE 'completed' END \
             WHERE id IN (SELECT DISTINCT announcement_id FROM deliveries WHERE id = ANY($2))",
        )
        .bind(now)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn announcement_pace(&self, id: &str, since: DateTime<Utc>) -> StoreResult<Option<Pace>> {
        shared::announcement_pace(&self.pool, id, since).await
    }

    async fn oldest_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        shared::oldest_due(&self.pool, now).await
    }

    async fn wake_others(&self) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn listen_others(&self) -> StoreResult<Option<Box<dyn WakeListener>>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(WAKE_CHANNEL).await?;
        Ok(Some(Box::new(PgWakes(listener))))
    }

    async fn state_get(&self, channel: &ChannelId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        shared::state_get(&self.pool, channel, key).await
    }

    async fn state_scan(
        &self,
        channel: &ChannelId,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        shared::state_scan(&self.pool, channel, prefix).await
    }

    async fn state_scan_many(
        &self,
        channel: &ChannelId,
        prefixes: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let (ranges, open_ended) = prefix_ranges(prefixes);
        let (lo, hi): (Vec<Vec<u8>>, Vec<Vec<u8>>) = ranges.into_iter().unzip();
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT s.key, s.value FROM UNNEST($2::bytea[], $3::bytea[]) AS r(lo, hi) \
             JOIN channel_state s ON s.channel_id = $1 AND s.key >= r.lo AND s.key < r.hi",
        )
        .bind(channel.as_str())
        .bind(&lo)
        .bind(&hi)
        .fetch_all(&self.pool)
        .await?;
        for prefix in open_ended {
            rows.extend(shared::state_scan(&self.pool, channel, prefix).await?);
        }
        Ok(rows)
    }

    async fn state_write(
        &self,
        lease: &SenderLease,
        batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> StoreResult<bool> {
        // The row lock holds off a takeover until this batch is committed (a mismatch rolls
        // the state_token update back with the transaction).
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "UPDATE channel_senders SET state_token = lease_token WHERE channel_id = $1 RETURNING lease_token",
        )
        .bind(lease.channel.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(lease.token) {
            return Ok(false);
        }
        let (upserts, deletes) = split_batch(batch);
        if !deletes.is_empty() {
            sqlx::query("DELETE FROM channel_state WHERE channel_id = $1 AND key = ANY($2)")
                .bind(lease.channel.as_str())
                .bind(&deletes)
                .execute(&mut *tx)
                .await?;
        }
        if !upserts.is_empty() {
            let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = upserts.into_iter().unzip();
            sqlx::query(
                "INSERT INTO channel_state (channel_id, key, value) \
                 SELECT $1, k, v FROM UNNEST($2::bytea[], $3::bytea[]) AS u(k, v) \
                 ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(lease.channel.as_str())
            .bind(&keys)
            .bind(&values)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The `NOTIFY` channel of [`PipelineStore::wake_others`].
const WAKE_CHANNEL: &str = "herald_deliveries";

/// Other replicas' wake-ups, heard on a `LISTEN` connection.
struct PgWakes(sqlx::postgres::PgListener);

#[async_trait]
impl WakeListener for PgWakes {
    async fn recv(&mut self) -> StoreResult<()> {
        self.0.recv().await?;
        Ok(())
    }
}
