//! Postgres's own subscribing and announcement functions behind [`Backend`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{announcements, subscribers};
use crate::store::backend::Backend;
use crate::store::*;

impl Backend for Postgres {
    async fn subscribe(
        pool: &PgPool,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<SubscribeOutcome> {
        subscribers::subscribe(pool, channel, address).await
    }

    async fn subscribe_in(
        conn: &mut PgConnection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> StoreResult<SubscribeOutcome> {
        subscribers::subscribe_in(conn, channel, address, now).await
    }

    async fn subscribe_many(
        pool: &PgPool,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<BatchOutcome> {
        subscribers::subscribe_many(pool, channel, addresses).await
    }

    async fn unsubscribe(
        conn: &mut PgConnection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        subscribers::unsubscribe(conn, channel, address, now).await
    }

    async fn list_subscribers(
        pool: &PgPool,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Vec<Subscriber>> {
        subscribers::list(pool, channel, page).await
    }

    async fn create_announcement(
        pool: &PgPool,
        new: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Option<Announcement>> {
        announcements::create(pool, new, idempotency).await
    }

    /// The REST path's single-statement fan-out.
    async fn announce_in_tx(
        tx: &mut Transaction<'_, Postgres>,
        new: &NewAnnouncement,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(announcements::insert_for_all(&mut **tx, new, now)
            .await?
            .is_some())
    }
}
