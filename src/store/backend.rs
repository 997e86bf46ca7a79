//! The store operations still written once per backend (subscribing and the announcement
//! fan-out, in `postgres/` and `sqlite/`), named here so that the shared impls over
//! [`SqlPool`](super::dialect::SqlPool) can call them. Each backend implements [`Backend`] in
//! its `bridge.rs` by calling its own functions; once those are shared generic functions too,
//! the shared impls call them directly and this trait goes.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Pool, Transaction};

use super::dialect::Dialect;
use super::*;

pub(crate) trait Backend: Dialect {
    /// Subscribes (or re-activates) one address.
    fn subscribe(
        pool: &Pool<Self>,
        channel: &ChannelId,
        address: &Address,
    ) -> impl Future<Output = StoreResult<SubscribeOutcome>> + Send;

    /// Subscribes (or re-activates) one address on `conn`, telling the outcome; run inside a
    /// transaction when the outcome must be acted on atomically.
    fn subscribe_in(
        conn: &mut Self::Connection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<SubscribeOutcome>> + Send;

    /// Subscribes (or re-activates) many addresses in one statement.
    fn subscribe_many(
        pool: &Pool<Self>,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> impl Future<Output = StoreResult<BatchOutcome>> + Send;

    /// Marks an active subscriber unsubscribed at `now`; false if there was none.
    fn unsubscribe(
        conn: &mut Self::Connection,
        channel: &ChannelId,
        address: &Address,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// A page of a channel's active subscribers.
    fn list_subscribers(
        pool: &Pool<Self>,
        channel: &ChannelId,
        page: &Page,
    ) -> impl Future<Output = StoreResult<Vec<Subscriber>>> + Send;

    /// Creates an announcement and its deliveries (`None`: no such channel).
    fn create_announcement(
        pool: &Pool<Self>,
        new: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> impl Future<Output = StoreResult<Option<Announcement>>> + Send;

    /// Creates an announcement to all of a channel's subscribers inside `tx` (the chain
    /// engine's batch); true when it was created.
    fn announce_in_tx(
        tx: &mut Transaction<'_, Self>,
        new: &NewAnnouncement,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
