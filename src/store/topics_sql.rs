//! The SQL behind [`TopicStore`](super::TopicStore): topics, preferences and the send-time
//! deliverability check, written once for both backends: one impl for every store over a
//! [`SqlPool`] of a [`Dialect`] (conventions as in `selfservice_sql.rs`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::dialect::{Dialect, SqlPool};
use super::selfservice_sql::log_entry;
use super::*;

#[async_trait]
impl<S> TopicStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Dialect>::TextList: 'static,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> bool: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> String: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (String,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (Option<String>,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Option<String>, String, DateTime<Utc>, Option<bool>):
        FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> TopicRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn create_topic(&self, channel: &ChannelId, topic: &Topic) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO topics (channel_id, name, description, default_mode, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, name) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(topic.name.as_str())
        .bind(topic.description.as_deref())
        .bind(topic.default_mode.as_str())
        .bind(topic.created_at)
        .execute(self.sql_pool())
        .await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn list_topics(&self, channel: &ChannelId) -> StoreResult<Vec<Topic>> {
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT name, description, default_mode, created_at FROM topics \
             WHERE channel_id = $1 ORDER BY name",
        )
        .bind(channel.as_str())
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows.into_iter().map(TopicRow::into_topic).collect())
    }

    async fn get_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<Option<Topic>> {
        let row: Option<TopicRow> = sqlx::query_as(
            "SELECT name, description, default_mode, created_at FROM topics \
             WHERE channel_id = $1 AND name = $2",
        )
        .bind(channel.as_str())
        .bind(name)
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(TopicRow::into_topic))
    }

    async fn update_topic(
        &self,
        channel: &ChannelId,
        name: &str,
        description: Option<&str>,
        mode: TopicMode,
    ) -> StoreResult<Option<Topic>> {
        let row: Option<TopicRow> = sqlx::query_as(
            "UPDATE topics SET description = $3, default_mode = $4 \
             WHERE channel_id = $1 AND name = $2 \
             RETURNING name, description, default_mode, created_at",
        )
        .bind(channel.as_str())
        .bind(name)
        .bind(description)
        .bind(mode.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        Ok(row.map(TopicRow::into_topic))
    }

    async fn delete_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<bool> {
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        sqlx::query("DELETE FROM topic_preferences WHERE channel_id = $1 AND topic = $2")
            .bind(channel.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM topics WHERE channel_id = $1 AND name = $2")
            .bind(channel.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(S::Db::rows_affected(&done) == 1)
    }

    async fn set_topic_preference(
        &self,
        channel: &ChannelId,
        address: &Address,
        topic: &str,
        enabled: bool,
        context: &ConsentContext,
    ) -> StoreResult<PreferenceOutcome> {
        let now = Utc::now();
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let mode: Option<String> = sqlx::query_scalar(
            "SELECT default_mode FROM topics WHERE channel_id = $1 AND name = $2",
        )
        .bind(channel.as_str())
        .bind(topic)
        .fetch_optional(&mut *tx)
        .await?;
        match mode.as_deref() {
            None => return Ok(PreferenceOutcome::UnknownTopic),
            Some("required") if !enabled => return Ok(PreferenceOutcome::Required),
            Some(_) => {}
        }
        sqlx::query(
            "INSERT INTO topic_preferences (channel_id, address, topic, enabled, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, address, topic) \
             DO UPDATE SET enabled = $4, updated_at = $5",
        )
        .bind(channel.as_str())
        .bind(address.as_str())
        .bind(topic)
        .bind(enabled)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let action = if enabled {
            ConsentAction::TopicOn
        } else {
            ConsentAction::TopicOff
        };
        log_entry(
            &mut *tx,
            channel,
            address,
            action,
            Some(topic),
            context,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(PreferenceOutcome::Set)
    }

    async fn topic_preferences(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Vec<TopicPreference>> {
        let rows: Vec<(String, Option<String>, String, DateTime<Utc>, Option<bool>)> =
            sqlx::query_as(
                "SELECT t.name, t.description, t.default_mode, t.created_at, p.enabled \
                 FROM topics t LEFT JOIN topic_preferences p ON p.channel_id = t.channel_id \
                 AND p.topic = t.name AND p.address = $2 WHERE t.channel_id = $1 ORDER BY t.name",
            )
            .bind(channel.as_str())
            .bind(address.as_str())
            .fetch_all(self.sql_pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, description, mode, created_at, choice)| {
                let topic = TopicRow {
                    name,
                    description,
                    default_mode: mode,
                    created_at,
                }
                .into_topic();
                let enabled = match topic.default_mode {
                    TopicMode::Required => true,
                    TopicMode::On => choice.unwrap_or(true),
                    TopicMode::Off => choice.unwrap_or(false),
                };
                TopicPreference {
                    topic,
                    enabled,
                    explicit: choice.is_some(),
                }
            })
            .collect())
    }

    async fn topic_receivers(
        &self,
        channel: &ChannelId,
        topic: &str,
        addresses: &[String],
    ) -> StoreResult<HashSet<String>> {
        let sql = format!(
            "SELECT list.value FROM {rows} WHERE (SELECT s.status FROM subscribers s \
             WHERE s.channel_id = $1 AND s.address = list.value) = 'active' \
             AND (NOT EXISTS (SELECT 1 FROM topics t WHERE t.channel_id = $1 AND t.name = $3) \
             OR EXISTS (SELECT 1 FROM topics t WHERE t.channel_id = $1 AND t.name = $3 \
                 AND (t.default_mode = 'required' OR COALESCE((SELECT p.enabled FROM topic_preferences p \
                     WHERE p.channel_id = $1 AND p.address = list.value AND p.topic = $3), t.default_mode = 'on'))))",
            rows = S::Db::text_rows(2),
        );
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(S::Db::text_list(addresses.iter().map(String::as_str)))
            .bind(topic)
            .fetch_all(self.sql_pool())
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn announcement_topic(&self, announcement: &str) -> StoreResult<Option<String>> {
        let topic: Option<Option<String>> =
            sqlx::query_scalar("SELECT topic FROM announcements WHERE id = $1")
                .bind(announcement)
                .fetch_optional(self.sql_pool())
                .await?;
        Ok(topic.flatten())
    }
}
