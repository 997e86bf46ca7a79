//! SQLite implementation of [`PipelineStore`]. SQLite has one writer at a time, so a claim is
//! a plain `UPDATE … RETURNING` on the status/lease columns; lists travel as JSON text.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqliteStore;
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

    shared_pipeline_sql!(sqlx::SqlitePool);
}

/// Rows per multi-row state statement (3 parameters each, far below SQLite's 32,766).
const STATE_ROWS_PER_STATEMENT: usize = 500;

#[async_trait]
impl PipelineStore for SqliteStore {
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
        let _turn = self.writes.enter().await;
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
        let _turn = self.writes.enter().await;
        shared::acquire_sender(&self.pool, channel, owner, until, now).await
    }

    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
        let _turn = self.writes.enter().await;
        shared::renew_sender(&self.pool, lease, until).await
    }

    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let _turn = self.writes.enter().await;
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
               ORDER BY {RANK}, id LIMIT $6) \
             RETURNING id, announcement_id, address, attempts"
        );
        let _turn = self.writes.enter().await;
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
             AND address IN (SELECT value FROM json_each($2))",
        )
        .bind(channel.as_str())
        .bind(serde_json::to_string(addresses).expect("strings serialize"))
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
        let _turn = self.writes.enter().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut settled = 0;
        for (outcome, ids) in group_outcomes(results) {
            let (status, reason, next, inc) = outcome.columns(now);
            settled += sqlx::query(
                "UPDATE deliveries SET status = $1, reason = $2, next_attempt_at = $3, attempts = attempts + $4, \
                   lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                 WHERE id IN (SELECT value FROM json_each($6)) AND channel_id = $7 AND lease_token = $8",
            )
            .bind(status)
            .bind(reason)
            .bind(next)
            .bind(inc)
            .bind(now)
            .bind(serde_json::to_string(&ids).expect("ids serialize"))
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
             WHERE id IN (SELECT DISTINCT announcement_id FROM deliveries WHERE id IN (SELECT value FROM json_each($2)))",
        )
        .bind(now)
        .bind(serde_json::to_string(&ids).expect("ids serialize"))
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
        Ok(())
    }

    async fn listen_others(&self) -> StoreResult<Option<Box<dyn WakeListener>>> {
        Ok(None)
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
        let bounds: Vec<[String; 2]> = ranges
            .iter()
            .map(|(lo, hi)| [hex::encode(lo), hex::encode(hi)])
            .collect();
        // The ranges drive the loop (CROSS JOIN keeps them outside): one primary-key range
        // scan per prefix, all in one statement.
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT s.key, s.value FROM json_each($2) AS r CROSS JOIN channel_state AS s \
             WHERE s.channel_id = $1 AND s.key >= unhex(r.value ->> 0) AND s.key < unhex(r.value ->> 1)",
        )
        .bind(channel.as_str())
        .bind(serde_json::to_string(&bounds).expect("hex strings serialize"))
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
        // BEGIN IMMEDIATE semantics: the fencing check and the writes share one write lock.
        let _turn = self.writes.enter().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<i64> = sqlx::query_scalar(
            "UPDATE channel_senders SET state_token = lease_token WHERE channel_id = $1 RETURNING lease_token",
        )
        .bind(lease.channel.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(lease.token) {
            return Ok(false);
        }
        // Multi-row statements: one round trip to SQLite's worker thread per chunk, not per
        // key (a repeat send round rewrites ~500 ratchet states).
        let (upserts, deletes) = split_batch(batch);
        for chunk in deletes.chunks(STATE_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM channel_state WHERE channel_id = ");
            q.push_bind(lease.channel.as_str()).push(" AND key IN (");
            let mut keys = q.separated(", ");
            for key in chunk {
                keys.push_bind(key);
            }
            q.push(")").build().execute(&mut *tx).await?;
        }
        for chunk in upserts.chunks(STATE_ROWS_PER_STATEMENT) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO channel_state (channel_id, key, value) ");
            q.push_values(chunk, |mut row, (key, value)| {
                row.push_bind(lease.channel.as_str())
                    .push_bind(key)
                    .push_bind(value);
            });
            q.push(" ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
