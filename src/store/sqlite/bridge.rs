//! SQLite's own subscribing and announcement functions behind [`Backend`].

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::{announcements, subscribers};
use crate::store::backend::Backend;
use crate::store::*;

impl Backend for Sqlite {
    async fn subscribe(
        pool: &SqlitePool,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<SubscribeOutcome> {
        subscribers::subscribe(pool, channel, address).await
    }

    async fn subscribe_in(
        conn: &mut SqliteConnection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> StoreResult<SubscribeOutcome> {
        subscribers::subscribe_in(conn, channel, address, now).await
    }

    async fn subscribe_many(
        pool: &SqlitePool,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<BatchOutcome> {
        subscribers::subscribe_many(pool, channel, addresses).await
    }

    async fn unsubscribe(
        conn: &mut SqliteConnection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        subscribers::unsubscribe(conn, channel, address, now).await
    }

    async fn list_subscribers(
        pool: &SqlitePool,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Vec<Subscriber>> {
        subscribers::list(pool, channel, page).await
    }

    async fn create_announcement(
        pool: &SqlitePool,
        new: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Option<Announcement>> {
        announcements::create(pool, new, idempotency).await
    }

    /// The REST path's fan-out, inside the batch.
    async fn announce_in_tx(
        tx: &mut Transaction<'_, Sqlite>,
        new: &NewAnnouncement,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(announcements::insert_in_tx(tx, new, now).await?.is_some())
    }
}
