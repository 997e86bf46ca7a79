//! Postgres implementation of [`PipelineStore`]. Claims use `FOR UPDATE SKIP LOCKED` so
//! concurrent workers never block on each other's rows; lists travel as arrays. Work arrival is
//! broadcast with `NOTIFY herald_deliveries` so workers in other replicas wake at once.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::PgStore;
use crate::domain::ChannelId;
use crate::store::pipeline::*;
use crate::store::StoreResult;

/// Queries written once for both backends.
mod shared {
    use chrono::{DateTime, Utc};

    use crate::store::pipeline::{shared_pipeline_reads, Pace};
    use crate::store::StoreResult;

    shared_pipeline_reads!(sqlx::PgPool);
}

/// Priority rank for ordering: lower is more urgent.
const RANK: &str = "CASE priority WHEN 'critical' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END";

#[async_trait]
impl PipelineStore for PgStore {
    async fn sender_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>> {
        let sql = format!(
            "SELECT channel_id FROM (SELECT channel_id, MIN({RANK}) AS r FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 GROUP BY channel_id) AS c ORDER BY r LIMIT $2"
        );
        let mut ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let unregistered: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM channels WHERE xmtp_inbox_id IS NULL AND deleted_at IS NULL LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
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
        let token: Option<i64> = sqlx::query_scalar(
            "INSERT INTO channel_senders (channel_id, lease_owner, lease_until, lease_token, updated_at) \
             VALUES ($1, $2, $3, 1, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET lease_owner = excluded.lease_owner, \
               lease_until = excluded.lease_until, lease_token = channel_senders.lease_token + 1, \
               updated_at = excluded.updated_at \
             WHERE channel_senders.lease_until IS NULL OR channel_senders.lease_until < $4 \
             RETURNING lease_token",
        )
        .bind(channel.as_str())
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(token.map(|token| SenderLease {
            channel: channel.clone(),
            owner: owner.to_owned(),
            token,
        }))
    }

    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_senders SET lease_until = $3 WHERE channel_id = $1 AND lease_token = $2",
        )
        .bind(lease.channel.as_str())
        .bind(lease.token)
        .bind(until)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE channel_senders SET lease_owner = NULL, lease_until = $5, last_error = $3, updated_at = $4 \
             WHERE channel_id = $1 AND lease_token = $2",
        )
        .bind(lease.channel.as_str())
        .bind(lease.token)
        .bind(error)
        .bind(Utc::now())
        .bind(hold_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn channel_secret(&self, channel: &ChannelId) -> StoreResult<Option<ChannelSecret>> {
        let row = sqlx::query(
            "SELECT address, wallet_key_sealed, xmtp_inbox_id, deleted_at IS NOT NULL AS deleted FROM channels WHERE id = $1",
        )
        .bind(channel.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ChannelSecret {
            address: r.get("address"),
            wallet_key_sealed: r.get("wallet_key_sealed"),
            inbox_id: r.get("xmtp_inbox_id"),
            deleted: r.get("deleted"),
        }))
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
        .execute(&self.pool)
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
        Ok(
            sqlx::query_scalar("SELECT text FROM announcements WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
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
        sqlx::query("SELECT pg_notify('herald_deliveries', '')")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn state_get(&self, channel: &ChannelId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar(
                "SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2",
            )
            .bind(channel.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
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
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query_as(
                "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 ORDER BY key",
            )
            .bind(channel.as_str())
            .bind(prefix)
            .fetch_all(&self.pool)
            .await?,
        };
        Ok(rows)
    }

    async fn state_write(
        &self,
        lease: &SenderLease,
        batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> StoreResult<bool> {
        // The row lock holds off a takeover until this batch is committed.
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT lease_token FROM channel_senders WHERE channel_id = $1 FOR SHARE",
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
