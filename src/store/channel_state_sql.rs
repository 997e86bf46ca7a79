//! Channel identity material for workers: the sealed wallet key, the registered XMTP
//! identity, and the opaque key/value state the XMTP client keeps per channel.
//!
//! Portable SQL, written once for both backends (conventions as in `selfservice_sql.rs`).

/// Expands to the free functions `wallet_sealed`, `set_identity`, `get`, `put` and `delete`
/// over a `&$pool`. The caller must `use chrono::Utc` and `crate::store::*`.
macro_rules! impl_channel_state {
    ($pool:ty) => {
        pub(super) async fn wallet_sealed(pool: &$pool, id: &ChannelId) -> StoreResult<Option<Vec<u8>>> {
            let sealed = sqlx::query_scalar(
                "SELECT wallet_key_sealed FROM channels WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
            Ok(sealed)
        }

        pub(super) async fn set_identity(
            pool: &$pool,
            id: &ChannelId,
            inbox_id: &str,
            installation_id: &str,
        ) -> StoreResult<()> {
            sqlx::query(
                "UPDATE channels SET xmtp_inbox_id = $2, xmtp_installation_id = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(inbox_id)
            .bind(installation_id)
            .bind(Utc::now())
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(super) async fn get(
            pool: &$pool,
            channel: &ChannelId,
            key: &[u8],
        ) -> StoreResult<Option<Vec<u8>>> {
            let value =
                sqlx::query_scalar("SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2")
                    .bind(channel.as_str())
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
            Ok(value)
        }

        pub(super) async fn put(
            pool: &$pool,
            channel: &ChannelId,
            key: &[u8],
            value: &[u8],
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO channel_state (channel_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(channel.as_str())
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(super) async fn delete(pool: &$pool, channel: &ChannelId, key: &[u8]) -> StoreResult<()> {
            sqlx::query("DELETE FROM channel_state WHERE channel_id = $1 AND key = $2")
                .bind(channel.as_str())
                .bind(key)
                .execute(pool)
                .await?;
            Ok(())
        }
    };
}

pub(super) use impl_channel_state;
