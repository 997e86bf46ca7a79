//! Subscribers: the parts of unsubscribing and keyset listing that both backends share.
//!
//! Portable SQL, written once (conventions as in `selfservice_sql.rs`). Subscribing stays in each
//! backend's `subscribers.rs`: telling an upsert's insert from its update, and reading a list of
//! addresses as rows, are real dialect differences.

/// Expands to the free functions `unsubscribe` and `list` over a `&$pool`. The caller must
/// `use chrono::Utc` and `crate::store::*`.
macro_rules! impl_subscribers {
    ($pool:ty) => {
        pub(super) async fn unsubscribe(
            pool: &$pool,
            channel: &ChannelId,
            address: &Address,
        ) -> StoreResult<bool> {
            let done = sqlx::query(
                "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 \
                 WHERE channel_id = $1 AND address = $2 AND status = 'active'",
            )
            .bind(channel.as_str())
            .bind(address.as_str())
            .bind(Utc::now())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn list(
            pool: &$pool,
            channel: &ChannelId,
            page: &Page,
        ) -> StoreResult<Vec<Subscriber>> {
            let rows: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
                "SELECT address, updated_at FROM subscribers WHERE channel_id = $1 AND status = 'active' \
                 AND (CAST($2 AS TEXT) IS NULL OR address > $2) ORDER BY address LIMIT $3",
            )
            .bind(channel.as_str())
            .bind(&page.cursor)
            .bind(i64::from(page.limit))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(address, at)| Subscriber {
                    address: Address::from_trusted(address),
                    subscribed_at: at,
                })
                .collect())
        }
    };
}

pub(super) use impl_subscribers;
