//! Subscribers: batch subscribing, unsubscribing and keyset listing, shared by both backends.
//!
//! Portable SQL, written once (conventions as in `selfservice_sql.rs`). Reading a bound list of
//! addresses as rows is a dialect difference and is passed in. Subscribing one address stays in
//! each backend's `subscribers.rs`: telling an upsert's insert from its update differs.

/// Expands to the free functions `subscribe_in`, `subscribe_many`, `unsubscribe` and `list` for
/// database `$db`. `$address_rows` is a table expression over bind parameter `$2` yielding an
/// `address` column, and `$bind_list` turns `&[Address]` into the value bound there. The caller
/// must `use chrono::Utc` and `crate::store::*`.
macro_rules! impl_subscribers {
    ($db:ty, $address_rows:literal, $bind_list:path) => {
        /// Subscribes (or re-activates) one address on `conn`, portably: an insert that ignores
        /// a conflict, then a re-activation, so the outcome is known without dialect tricks.
        /// Run inside a transaction when the outcome must be acted on atomically.
        pub(super) async fn subscribe_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            channel: &ChannelId,
            address: &Address,
            now: chrono::DateTime<Utc>,
        ) -> StoreResult<SubscribeOutcome> {
            // Both statements take the same three parameters.
            let statement = |sql| {
                sqlx::query(sql)
                    .bind(channel.as_str())
                    .bind(address.as_str())
                    .bind(now)
            };
            let inserted = statement(
                "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
                 VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (channel_id, address) DO NOTHING",
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(SubscribeOutcome::Added);
            }
            let reactivated = statement(
                "UPDATE subscribers SET status = 'active', updated_at = $3 \
                 WHERE channel_id = $1 AND address = $2 AND status <> 'active'",
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(if reactivated == 1 {
                SubscribeOutcome::Reactivated
            } else {
                SubscribeOutcome::AlreadyActive
            })
        }

        /// One upsert for the whole batch; `WHERE true` lets SQLite parse the upsert after
        /// `INSERT … SELECT` (Postgres does not mind it). Only new or re-activated rows count as
        /// affected, so the rest were already active.
        pub(super) async fn subscribe_many(
            pool: &sqlx::Pool<$db>,
            channel: &ChannelId,
            addresses: &[Address],
        ) -> StoreResult<BatchOutcome> {
            let added = sqlx::query(concat!(
                "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
                 SELECT $1, a.address, 'active', $3, $3 FROM ",
                $address_rows,
                " WHERE true \
                 ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
                 WHERE subscribers.status <> 'active'"
            ))
            .bind(channel.as_str())
            .bind($bind_list(addresses))
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected();
            Ok(BatchOutcome {
                added,
                already: addresses.len() as u64 - added,
            })
        }

        /// Marks an active subscriber unsubscribed at `now`; false if there was none.
        pub(super) async fn unsubscribe<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            channel: &ChannelId,
            address: &Address,
            now: chrono::DateTime<Utc>,
        ) -> StoreResult<bool> {
            let done = sqlx::query(
                "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 \
                 WHERE channel_id = $1 AND address = $2 AND status = 'active'",
            )
            .bind(channel.as_str())
            .bind(address.as_str())
            .bind(now)
            .execute(executor)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn list(
            pool: &sqlx::Pool<$db>,
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
