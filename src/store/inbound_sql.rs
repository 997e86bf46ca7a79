//! The SQL behind [`InboundStore`](super::InboundStore): welcome text and chat bookkeeping.
//!
//! Portable SQL for both backends, like `selfservice_sql.rs` (same conventions).

/// Expands to `impl InboundStore for $store` using `self.pool`.
macro_rules! impl_inbound {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::InboundStore for $store {
            async fn welcome_text(&self, channel: &ChannelId) -> StoreResult<Option<String>> {
                let text: Option<Option<String>> =
                    sqlx::query_scalar("SELECT welcome_text FROM channels WHERE id = $1")
                        .bind(channel.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(text.flatten())
            }

            async fn set_welcome_text(
                &self,
                channel: &ChannelId,
                text: Option<&str>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE channels SET welcome_text = $2 WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(channel.as_str())
                .bind(text)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn inbound_peers(&self, channel: &ChannelId) -> StoreResult<Vec<(String, Address)>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT inbox_id, address FROM inbound_peers WHERE channel_id = $1 ORDER BY inbox_id",
                )
                .bind(channel.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(i, a)| (i, Address::from_trusted(a))).collect())
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
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
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
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(super) use impl_inbound;
