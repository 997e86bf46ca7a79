//! The SQL behind [`InboundStore`](super::InboundStore): welcome text and chat bookkeeping,
//! written once for both backends: one impl for every store over a [`SqlPool`] of a
//! [`Dialect`] (conventions as in `selfservice_sql.rs`). Many peers are written in one
//! statement from a bound list ([`Dialect::pair_rows`], [`Dialect::text_rows`]).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::dialect::{json_object, json_pairs, Dialect, SqlPool};
use super::*;

#[async_trait]
impl<S> InboundStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Dialect>::TextList: 'static,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> String: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Option<String>,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>):
        FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn welcome_text(&self, channel: &ChannelId) -> StoreResult<Option<String>> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT welcome_text FROM channels WHERE id = $1")
                .bind(channel.as_str())
                .fetch_optional(self.sql_pool())
                .await?;
        Ok(text.flatten())
    }

    async fn set_welcome_text(&self, channel: &ChannelId, text: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE channels SET welcome_text = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(channel.as_str())
        .bind(text)
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn inbound_peers(&self, channel: &ChannelId) -> StoreResult<Vec<(String, Address)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT inbox_id, address FROM inbound_peers WHERE channel_id = $1 ORDER BY inbox_id",
        )
        .bind(channel.as_str())
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(i, a)| (i, Address::from_trusted(a)))
            .collect())
    }

    async fn add_inbound_peer(
        &self,
        channel: &ChannelId,
        inbox_id: &str,
        address: &Address,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO inbound_peers (channel_id, inbox_id, address, first_seen_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (channel_id, inbox_id) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(inbox_id)
        .bind(address.as_str())
        .bind(Utc::now())
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn claim_inbound_message(
        &self,
        channel: &ChannelId,
        message_id: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO inbound_messages (channel_id, message_id, processed_at) \
             VALUES ($1, $2, $3) ON CONFLICT (channel_id, message_id) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(message_id)
        .bind(Utc::now())
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn add_inbound_peers(
        &self,
        channel: &ChannelId,
        peers: &[(String, Address)],
    ) -> StoreResult<u64> {
        if peers.is_empty() {
            return Ok(0);
        }
        // `WHERE true` lets SQLite parse the upsert after `INSERT … SELECT`.
        let sql = format!(
            "INSERT INTO inbound_peers (channel_id, inbox_id, address, first_seen_at) \
             SELECT $1, v.a, v.b, $3 FROM {pairs} \
             WHERE true ON CONFLICT (channel_id, inbox_id) DO NOTHING",
            pairs = S::Db::pair_rows(2, "v"),
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(json_pairs(
                peers
                    .iter()
                    .map(|(inbox, address)| (inbox.as_str(), address.as_str())),
            ))
            .bind(Utc::now())
            .execute(self.sql_pool())
            .await?;
        Ok(S::Db::rows_affected(&done))
    }

    async fn peers_without_group(&self, channel: &ChannelId) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT inbox_id FROM inbound_peers WHERE channel_id = $1 AND group_id IS NULL",
        )
        .bind(channel.as_str())
        .fetch_all(self.sql_pool())
        .await?)
    }

    async fn set_peer_groups(
        &self,
        channel: &ChannelId,
        groups: &[(String, String)],
    ) -> StoreResult<()> {
        if groups.is_empty() {
            return Ok(());
        }
        sqlx::query(sqlx::AssertSqlSafe(S::Db::set_peer_groups_sql()))
            .bind(channel.as_str())
            .bind(json_object(
                groups
                    .iter()
                    .map(|(inbox, group)| (inbox.as_str(), group.as_str())),
            ))
            .execute(self.sql_pool())
            .await?;
        Ok(())
    }

    async fn inbound_topics(&self) -> StoreResult<InboundTopics> {
        let welcomes: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, xmtp_installation_id FROM channels \
             WHERE deleted_at IS NULL AND xmtp_installation_id IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.sql_pool())
        .await?;
        let groups: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.channel_id, p.group_id FROM inbound_peers p \
             JOIN channels c ON c.id = p.channel_id \
             WHERE c.deleted_at IS NULL AND p.group_id IS NOT NULL \
             ORDER BY p.channel_id, p.group_id",
        )
        .fetch_all(self.sql_pool())
        .await?;
        let typed = |rows: Vec<(String, String)>| {
            rows.into_iter()
                .map(|(c, t)| (ChannelId::from_trusted(c), t))
                .collect()
        };
        Ok(InboundTopics {
            welcomes: typed(welcomes),
            groups: typed(groups),
        })
    }

    async fn inbound_due_channels(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>> {
        // Never-read channels first, then the longest unread.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT c.id FROM channels c LEFT JOIN inbound_checks i ON i.channel_id = c.id \
             WHERE c.deleted_at IS NULL AND c.xmtp_inbox_id IS NOT NULL \
             AND (i.channel_id IS NULL OR i.due_at <= $1 OR i.marked_at > i.checked_at) \
             ORDER BY i.checked_at IS NOT NULL, i.checked_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.sql_pool())
        .await?;
        Ok(ids.into_iter().map(ChannelId::from_trusted).collect())
    }

    async fn inbound_plan(
        &self,
        channel: &ChannelId,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundPlan> {
        let row: Option<(DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT checked_at, due_at, marked_at FROM inbound_checks WHERE channel_id = $1",
        )
        .bind(channel.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        let checked = match row {
            None => return Ok(InboundPlan::All),
            Some((_, due, _)) if due <= now => return Ok(InboundPlan::All),
            Some((checked, _, Some(marked))) if marked > checked => checked,
            Some(_) => return Ok(InboundPlan::Nothing),
        };
        let peers: Vec<String> = sqlx::query_scalar(
            "SELECT inbox_id FROM inbound_peers WHERE channel_id = $1 \
             AND (group_id IS NULL OR marked_at >= $2)",
        )
        .bind(channel.as_str())
        .bind(checked)
        .fetch_all(self.sql_pool())
        .await?;
        Ok(InboundPlan::Peers(peers))
    }

    async fn mark_inbound_groups(
        &self,
        channel: &ChannelId,
        groups: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE inbound_peers SET marked_at = $3 WHERE channel_id = $1 \
             AND group_id IN (SELECT value FROM {rows})",
            rows = S::Db::text_rows(2),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(groups.iter().map(String::as_str)))
            .bind(now)
            .execute(self.sql_pool())
            .await?;
        Ok(())
    }

    async fn finish_inbound_check(
        &self,
        channel: &ChannelId,
        started: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO inbound_checks (channel_id, checked_at, due_at) VALUES ($1, $2, $3) \
             ON CONFLICT (channel_id) DO UPDATE SET checked_at = $2, due_at = $3",
        )
        .bind(channel.as_str())
        .bind(started)
        .bind(next_due)
        .execute(self.sql_pool())
        .await?;
        Ok(())
    }

    async fn mark_inbound(&self, channels: &[ChannelId], now: DateTime<Utc>) -> StoreResult<()> {
        for channel in channels {
            sqlx::query(
                "INSERT INTO inbound_checks (channel_id, checked_at, due_at, marked_at) \
                 VALUES ($1, $2, $2, $2) ON CONFLICT (channel_id) DO UPDATE SET marked_at = $2",
            )
            .bind(channel.as_str())
            .bind(now)
            .execute(self.sql_pool())
            .await?;
        }
        Ok(())
    }
}
