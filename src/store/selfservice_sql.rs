//! The SQL behind [`SelfServiceStore`](super::SelfServiceStore), written once for both backends.
//!
//! Every statement is portable (`CAST($n AS TEXT)` instead of `$n::text`, booleans bound as
//! `bool`, timestamps bound as `DateTime<Utc>`), so one macro expands into each backend's impl.
//! The only dialect difference, reading a JSON array of addresses as rows, is passed in.

/// Expands to `impl SelfServiceStore for $store` using `self.pool`. `$json_rows` is a table
/// expression over bind parameter `$2` yielding a `value` column (one address per row).
macro_rules! impl_selfservice {
    ($store:ty, $db:ty, $json_rows:literal) => {
        /// Appends one consent log entry inside the caller's transaction.
        async fn log_entry<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            channel: &ChannelId,
            address: &Address,
            action: ConsentAction,
            topic: Option<&str>,
            context: &ConsentContext,
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(ulid::Ulid::new().to_string())
            .bind(channel.as_str())
            .bind(address.as_str())
            .bind(action.as_str())
            .bind(topic)
            .bind(context.source.as_str())
            .bind(&context.evidence)
            .bind(now)
            .execute(executor)
            .await?;
            Ok(())
        }

        /// Logs `action` when the change it describes happened, then commits the change.
        async fn commit_logged(
            mut tx: sqlx::Transaction<'static, $db>,
            changed: bool,
            channel: &ChannelId,
            address: &Address,
            action: ConsentAction,
            context: &ConsentContext,
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            if changed {
                log_entry(&mut *tx, channel, address, action, None, context, now).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::SelfServiceStore for $store {
            async fn live_channel_tenant(
                &self,
                channel: &ChannelId,
            ) -> StoreResult<Option<TenantId>> {
                let tenant: Option<String> = sqlx::query_scalar(
                    "SELECT tenant_id FROM channels WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(channel.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(tenant.map(TenantId::from_trusted))
            }

            async fn create_nonce(&self, n: &NewNonce, max_outstanding: u32) -> StoreResult<bool> {
                // The cap is checked in the insert itself: exact on SQLite (one writer), and at
                // most a few concurrent inserts over on Postgres.
                let done = sqlx::query(
                    "INSERT INTO siwe_nonces (nonce, channel_id, address, issued_at, expires_at, message) \
                     SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT COUNT(*) FROM siwe_nonces \
                     WHERE channel_id = $2 AND used_at IS NULL AND expires_at > $4) < $7",
                )
                .bind(&n.nonce)
                .bind(n.channel.as_str())
                .bind(n.address.as_str())
                .bind(n.issued_at)
                .bind(n.expires_at)
                .bind(&n.message)
                .bind(i64::from(max_outstanding))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn outstanding_nonce(
                &self,
                channel: &ChannelId,
                address: &Address,
                valid_at: DateTime<Utc>,
            ) -> StoreResult<Option<OutstandingNonce>> {
                let row: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT nonce, message, expires_at FROM siwe_nonces \
                     WHERE channel_id = $1 AND address = $2 AND used_at IS NULL \
                     AND expires_at > $3 AND message IS NOT NULL ORDER BY expires_at DESC LIMIT 1",
                )
                .bind(channel.as_str())
                .bind(address.as_str())
                .bind(valid_at)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(nonce, message, expires_at)| OutstandingNonce {
                    nonce,
                    message,
                    expires_at,
                }))
            }

            async fn use_nonce(
                &self,
                nonce: &str,
                message: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<NonceUse> {
                let row: Option<(String, String, DateTime<Utc>, DateTime<Utc>, Option<String>)> =
                    sqlx::query_as(
                        "UPDATE siwe_nonces SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL \
                         AND (message IS NULL OR message = $3) \
                         RETURNING channel_id, address, issued_at, expires_at, message",
                    )
                    .bind(nonce)
                    .bind(now)
                    .bind(message)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some((channel, address, issued_at, expires_at, message)) = row {
                    return Ok(NonceUse::Consumed {
                        channel: ChannelId::from_trusted(channel),
                        address: Address::from_trusted(address),
                        issued_at,
                        expires_at,
                        message,
                    });
                }
                let used: Option<Option<DateTime<Utc>>> =
                    sqlx::query_scalar("SELECT used_at FROM siwe_nonces WHERE nonce = $1")
                        .bind(nonce)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(match used {
                    None => NonceUse::Unknown,
                    Some(Some(_)) => NonceUse::Replayed,
                    Some(None) => NonceUse::Mismatch,
                })
            }

            async fn purge_expired_nonces(&self, before: DateTime<Utc>) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM siwe_nonces WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn subscribe_with_consent(
                &self,
                channel: &ChannelId,
                address: &Address,
                context: &ConsentContext,
            ) -> StoreResult<SubscribeOutcome> {
                let now = Utc::now();
                let mut tx = $crate::store::write_tx::BeginWrite::begin_write(&self.pool).await?;
                let outcome = super::subscribers::subscribe_in(&mut *tx, channel, address, now).await?;
                let changed = outcome != SubscribeOutcome::AlreadyActive;
                commit_logged(tx, changed, channel, address, ConsentAction::Subscribe, context, now).await?;
                Ok(outcome)
            }

            async fn unsubscribe_with_consent(
                &self,
                channel: &ChannelId,
                address: &Address,
                context: &ConsentContext,
            ) -> StoreResult<bool> {
                let now = Utc::now();
                let mut tx = $crate::store::write_tx::BeginWrite::begin_write(&self.pool).await?;
                let done = super::subscribers::unsubscribe(&mut *tx, channel, address, now).await?;
                commit_logged(tx, done, channel, address, ConsentAction::Unsubscribe, context, now).await?;
                Ok(done)
            }

            async fn subscribe_many_with_consent(
                &self,
                channel: &ChannelId,
                addresses: &[Address],
                context: &ConsentContext,
            ) -> StoreResult<BatchOutcome> {
                let now = Utc::now();
                let list = serde_json::to_string(
                    &addresses.iter().map(Address::as_str).collect::<Vec<_>>(),
                )
                .expect("a list of strings always serializes");
                let mut tx = $crate::store::write_tx::BeginWrite::begin_write(&self.pool).await?;
                // The upsert's RETURNING lists only rows it inserted or re-activated (a
                // conflict its WHERE skips returns nothing): exactly the changes to log.
                let changed: Vec<String> = sqlx::query_scalar(concat!(
                    "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
                     SELECT $1, value, 'active', $3, $3 FROM ",
                    $json_rows,
                    " WHERE true ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', \
                     updated_at = $3 WHERE subscribers.status <> 'active' RETURNING address"
                ))
                .bind(channel.as_str())
                .bind(&list)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                let changed_list =
                    serde_json::to_string(&changed).expect("a list of strings always serializes");
                sqlx::query(concat!(
                    "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
                     SELECT $3 || ':' || value, $1, value, 'subscribe', NULL, $4, $5, $6 FROM ",
                    $json_rows
                ))
                .bind(channel.as_str())
                .bind(&changed_list)
                .bind(ulid::Ulid::new().to_string())
                .bind(context.source.as_str())
                .bind(&context.evidence)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let added = changed.len() as u64;
                Ok(BatchOutcome {
                    added,
                    already: addresses.len() as u64 - added,
                })
            }

            async fn log_consent_many(
                &self,
                channel: &ChannelId,
                addresses: &[Address],
                action: ConsentAction,
                context: &ConsentContext,
            ) -> StoreResult<()> {
                if addresses.is_empty() {
                    return Ok(());
                }
                let list = serde_json::to_string(
                    &addresses.iter().map(Address::as_str).collect::<Vec<_>>(),
                )
                .expect("a list of strings always serializes");
                // One ULID for the batch plus the (unique) address keeps ids unique and in
                // time order relative to other entries.
                let sql = concat!(
                    "INSERT INTO consent_log (id, channel_id, address, action, topic, source, evidence, created_at) \
                     SELECT $3 || ':' || value, $1, value, $4, NULL, $5, $6, $7 FROM ",
                    $json_rows
                );
                sqlx::query(sql)
                    .bind(channel.as_str())
                    .bind(&list)
                    .bind(ulid::Ulid::new().to_string())
                    .bind(action.as_str())
                    .bind(context.source.as_str())
                    .bind(&context.evidence)
                    .bind(Utc::now())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn consent_history(
                &self,
                channel: &ChannelId,
                address: &Address,
            ) -> StoreResult<Vec<ConsentRecord>> {
                let rows: Vec<ConsentRow> = sqlx::query_as(
                    "SELECT id, address, action, topic, source, evidence, created_at FROM consent_log \
                     WHERE channel_id = $1 AND address = $2 ORDER BY id",
                )
                .bind(channel.as_str())
                .bind(address.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(ConsentRow::into_record).collect())
            }

            async fn consent_export(
                &self,
                channel: &ChannelId,
                cursor: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<ConsentRecord>> {
                let rows: Vec<ConsentRow> = sqlx::query_as(
                    "SELECT id, address, action, topic, source, evidence, created_at FROM consent_log \
                     WHERE channel_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3",
                )
                .bind(channel.as_str())
                .bind(cursor)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(ConsentRow::into_record).collect())
            }

            async fn subscriber_status(
                &self,
                channel: &ChannelId,
                address: &Address,
            ) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT status FROM subscribers WHERE channel_id = $1 AND address = $2",
                )
                .bind(channel.as_str())
                .bind(address.as_str())
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}

pub(super) use impl_selfservice;
