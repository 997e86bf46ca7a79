//! The pipeline SQL that is identical on Postgres and SQLite, written once as a macro that each
//! backend expands over its own pool type (the same approach as `selfservice_sql.rs`).

/// Expands to the pipeline's queries whose SQL is the same on both backends (leases, channel
/// identity, texts, state reads, progress), as free functions over `$pool` (`PgPool` or
/// `SqlitePool`); each backend's impl delegates to them. Claims, settlements and state writes
/// differ (row locks, array binding) and stay in the backends.
macro_rules! shared_pipeline_sql {
    ($pool:ty) => {
        pub(super) async fn due_is_critical(pool: &$pool,
            channel: &ChannelId,
            now: DateTime<Utc>,
        ) -> StoreResult<bool> {
            // Walks the claim-order index (channel, rank, id) to the first due row.
            let sql = format!(
                "SELECT {RANK} FROM deliveries WHERE channel_id = $1 AND status = 'pending' \
                 AND next_attempt_at <= $2 ORDER BY {RANK}, id LIMIT 1"
            );
            let rank: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(channel.as_str())
                .bind(now)
                .fetch_optional(pool)
                .await?;
            Ok(rank == Some(0))
        }

        pub(super) async fn sender_candidates(pool: &$pool,
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
                .fetch_all(pool)
                .await?;
            let unregistered: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM channels WHERE xmtp_inbox_id IS NULL AND deleted_at IS NULL LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            ids.extend(unregistered);
            Ok(ids.into_iter().map(ChannelId::from_trusted).collect())
        }

        pub(super) async fn acquire_sender(pool: &$pool,
            channel: &ChannelId,
            owner: &str,
            until: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> StoreResult<Option<SenderLease>> {
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
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(token, state_token)| SenderLease {
                channel: channel.clone(),
                owner: owner.to_owned(),
                token,
                state_token,
            }))
        }

        pub(super) async fn renew_sender(pool: &$pool, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool> {
            let n = sqlx::query(
                "UPDATE channel_senders SET lease_until = $3 WHERE channel_id = $1 AND lease_token = $2",
            )
            .bind(lease.channel.as_str())
            .bind(lease.token)
            .bind(until)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        pub(super) async fn release_sender(pool: &$pool,
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
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(super) async fn channel_secret(pool: &$pool, channel: &ChannelId) -> StoreResult<Option<ChannelSecret>> {
            let row = sqlx::query(
                "SELECT address, wallet_key_sealed, xmtp_inbox_id, deleted_at IS NOT NULL AS deleted FROM channels WHERE id = $1",
            )
            .bind(channel.as_str())
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| ChannelSecret {
                address: r.get("address"),
                wallet_key_sealed: r.get("wallet_key_sealed"),
                inbox_id: r.get("xmtp_inbox_id"),
                deleted: r.get("deleted"),
            }))
        }

        pub(super) async fn set_channel_identity(pool: &$pool,
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
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(super) async fn announcement_text(pool: &$pool, id: &str) -> StoreResult<Option<String>> {
            Ok(
                sqlx::query_scalar("SELECT text FROM announcements WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?,
            )
        }

        pub(super) async fn state_get(pool: &$pool, channel: &ChannelId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
            Ok(
                sqlx::query_scalar(
                    "SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2",
                )
                .bind(channel.as_str())
                .bind(key)
                .fetch_optional(pool)
                .await?,
            )
        }

        pub(super) async fn state_scan(pool: &$pool,
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
                .fetch_all(pool)
                .await?,
                None => sqlx::query_as(
                    "SELECT key, value FROM channel_state WHERE channel_id = $1 AND key >= $2 ORDER BY key",
                )
                .bind(channel.as_str())
                .bind(prefix)
                .fetch_all(pool)
                .await?,
            };
            Ok(rows)
        }

        pub(super) async fn announcement_pace(
            pool: &$pool,
            id: &str,
            since: DateTime<Utc>,
        ) -> StoreResult<Option<Pace>> {
            let row: Option<(Option<String>, i64)> = sqlx::query_as(
                "SELECT a.topic, (SELECT COUNT(*) FROM deliveries d WHERE d.announcement_id = a.id \
                   AND d.status <> 'pending' AND d.updated_at > a.created_at AND d.updated_at >= $2) \
                 FROM announcements a WHERE a.id = $1",
            )
            .bind(id)
            .bind(since)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(topic, settled_since)| Pace {
                topic,
                settled_since,
            }))
        }

        pub(super) async fn oldest_due(
            pool: &$pool,
            now: DateTime<Utc>,
        ) -> StoreResult<Option<DateTime<Utc>>> {
            Ok(sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1",
            )
            .bind(now)
            .fetch_one(pool)
            .await?)
        }
    };
}
pub(crate) use shared_pipeline_sql;
