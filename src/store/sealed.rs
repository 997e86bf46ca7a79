//! Every value sealed under the master key, read in batches and re-sealed one by one: what
//! `herald keys rotate-master` needs. Sealed values live in three places: each channel's wallet
//! key (`channels.wallet_key_sealed`, bound to the channel id, deleted channels included), the
//! XMTP client state (`channel_state.value`, bound to channel and key) and webhook signing
//! secrets (`webhook_endpoints.secret_sealed` and `previous_secret_sealed`, bound to the
//! endpoint id, deleted endpoints included).
//!
//! [`SealedStore`] is a supertrait of [`Store`](super::Store); its SQL is portable and written
//! once here, one impl for every store over a [`SqlPool`] of a [`Dialect`].

use async_trait::async_trait;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::dialect::{Dialect, SqlPool};
use super::StoreResult;

/// One sealed value and where it lives.
#[derive(Clone, PartialEq, Eq)]
pub enum SealedAt {
    /// A channel's wallet key; the channel id is its context.
    Wallet { channel: String },
    /// A value of a channel's XMTP client state.
    State { channel: String, key: Vec<u8> },
    /// A webhook endpoint's signing secret (`previous`: the one rotated away, still in its
    /// overlap); the endpoint id is its context.
    Webhook { endpoint: String, previous: bool },
}

/// A sealed value as read, for a compare-and-set re-seal.
pub struct Sealed {
    pub at: SealedAt,
    pub value: Vec<u8>,
}

#[async_trait]
pub trait SealedStore: Send + Sync {
    /// Up to `limit` channel wallet keys with an id after `after` (all channels, by id).
    async fn sealed_wallets(&self, after: &str, limit: u32) -> StoreResult<Vec<Sealed>>;
    /// Up to `limit` client state values after (`channel`, `key`), in that order.
    async fn sealed_states(&self, after: (&str, &[u8]), limit: u32) -> StoreResult<Vec<Sealed>>;
    /// The signing secrets (current, then previous if any) of up to `limit` webhook endpoints
    /// with an id after `after` (all endpoints, by id).
    async fn sealed_webhooks(&self, after: &str, limit: u32) -> StoreResult<Vec<Sealed>>;
    /// Replaces the value at `at` with `new` if it is still `old` (a worker may have written it
    /// since it was read). Returns whether it was replaced.
    async fn reseal(&self, at: &SealedAt, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}

#[async_trait]
impl<S> SealedStore for S
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> &'q [u8]: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (String, Vec<u8>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Vec<u8>, Vec<u8>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Vec<u8>, Option<Vec<u8>>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn sealed_wallets(&self, after: &str, limit: u32) -> StoreResult<Vec<Sealed>> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, wallet_key_sealed FROM channels WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(channel, value)| Sealed {
                at: SealedAt::Wallet { channel },
                value,
            })
            .collect())
    }

    async fn sealed_states(&self, after: (&str, &[u8]), limit: u32) -> StoreResult<Vec<Sealed>> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT channel_id, key, value FROM channel_state \
             WHERE channel_id > $1 OR (channel_id = $1 AND key > $2) \
             ORDER BY channel_id, key LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit))
        .fetch_all(self.sql_pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(channel, key, value)| Sealed {
                at: SealedAt::State { channel, key },
                value,
            })
            .collect())
    }

    async fn sealed_webhooks(&self, after: &str, limit: u32) -> StoreResult<Vec<Sealed>> {
        let rows: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, secret_sealed, previous_secret_sealed FROM webhook_endpoints \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.sql_pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (endpoint, current, previous) in rows {
            out.push(Sealed {
                at: SealedAt::Webhook {
                    endpoint: endpoint.clone(),
                    previous: false,
                },
                value: current,
            });
            if let Some(value) = previous {
                out.push(Sealed {
                    at: SealedAt::Webhook {
                        endpoint,
                        previous: true,
                    },
                    value,
                });
            }
        }
        Ok(out)
    }

    async fn reseal(&self, at: &SealedAt, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let done = match at {
            SealedAt::Wallet { channel } => {
                sqlx::query(
                    "UPDATE channels SET wallet_key_sealed = $3 \
                     WHERE id = $1 AND wallet_key_sealed = $2",
                )
                .bind(channel.as_str())
                .bind(old)
                .bind(new)
                .execute(self.sql_pool())
                .await?
            }
            SealedAt::State { channel, key } => {
                sqlx::query(
                    "UPDATE channel_state SET value = $4 \
                     WHERE channel_id = $1 AND key = $2 AND value = $3",
                )
                .bind(channel.as_str())
                .bind(key.as_slice())
                .bind(old)
                .bind(new)
                .execute(self.sql_pool())
                .await?
            }
            SealedAt::Webhook { endpoint, previous } => {
                let sql = if *previous {
                    "UPDATE webhook_endpoints SET previous_secret_sealed = $3 \
                     WHERE id = $1 AND previous_secret_sealed = $2"
                } else {
                    "UPDATE webhook_endpoints SET secret_sealed = $3 \
                     WHERE id = $1 AND secret_sealed = $2"
                };
                sqlx::query(sql)
                    .bind(endpoint.as_str())
                    .bind(old)
                    .bind(new)
                    .execute(self.sql_pool())
                    .await?
            }
        };
        Ok(S::Db::rows_affected(&done) == 1)
    }
}
