//! Creating an announcement, written once for both backends as generic functions over
//! [`Dialect`]: the announcement row, the targeted audience's deliveries, settling the total and
//! status from the rows created, and completing an idempotency record.
//!
//! How the audience "all" (or a topic) is fanned out differs and is the one per-backend piece,
//! [`FanOutDialect`], in each backend's `announcements.rs`: one CTE statement on Postgres
//! (atomic on its own, so the common case needs no transaction), a few small statements in the
//! caller's transaction on SQLite. The other differences are [`Dialect`] items: the ownership
//! check's row lock and how a bound list of addresses reads as rows.
//!
//! Completing the idempotency record with the creation is in `announcements_idempotency_sql.rs`
//! and cancelling in `announcements_cancel_sql.rs`; both are re-exported here, where the
//! backends and the store look for them.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::announcements_idempotency_sql::commit_created;
use super::dialect::{Dialect, RowLock};
use super::{
    Address, Announcement, AnnouncementStatus, Audience, Counts, Creation, IdempotencyCompletion,
    NewAnnouncement, StoreResult,
};

pub(super) use super::announcements_cancel_sql::cancel;
pub(crate) use super::announcements_idempotency_sql::RecordedResponse;

/// The announcement as just created: nothing delivered yet, completed at once if nobody is
/// waiting for it.
pub(super) fn created(new: &NewAnnouncement, counts: Counts, now: DateTime<Utc>) -> Announcement {
    Announcement {
        id: new.id.clone(),
        channel_id: new.channel.clone(),
        text: new.text.clone(),
        priority: new.priority,
        status: AnnouncementStatus::shown(initial_status(&counts), new.send_at, None, now),
        counts,
        created_at: now,
        send_at: new.send_at,
        cancelled_at: None,
        content: new.content.clone(),
        retracted_by: None,
    }
}

/// When the announcement's deliveries first become due: its `send_at`, else at once.
pub(super) fn first_due(new: &NewAnnouncement, now: DateTime<Utc>) -> DateTime<Utc> {
    new.send_at.unwrap_or(now)
}

/// `completed` when no delivery is pending (every listed address was skipped, or nobody
/// subscribes), else `queued`.
pub(super) fn initial_status(counts: &Counts) -> AnnouncementStatus {
    if counts.pending == 0 {
        AnnouncementStatus::Completed
    } else {
        AnnouncementStatus::Queued
    }
}

/// What only one backend does when creating an announcement, implemented in
/// `postgres/announcements.rs` and `sqlite/announcements.rs`.
pub(crate) trait FanOutDialect: Dialect {
    /// Whether [`FanOutDialect::fan_out_all`] is one statement, atomic without a transaction
    /// (then the common cases, no idempotency record or a new key, run alone: no BEGIN/COMMIT
    /// round trips).
    const FAN_OUT_ALONE: bool;

    /// Audience "all" or a topic: the ownership check, the announcement row with its total and
    /// status, and one `pending` delivery per receiving subscriber. `None`, creating nothing,
    /// when the channel is missing, deleted or not the tenant's.
    fn fan_out_all<'c>(
        conn: &'c mut Self::Connection,
        new: &'c NewAnnouncement,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Option<Counts>>> + Send + 'c;

    /// [`FanOutDialect::fan_out_all`] with a new idempotency key recorded, done, by the same
    /// single statement (no transaction round trips): `Created`, `NoChannel`, or `KeyExists`
    /// (nothing created) as in [`create`]. `None`, doing nothing, where the backend has no
    /// such statement (the caller then uses its transaction).
    fn fan_out_all_recorded<'c>(
        conn: &'c mut Self::Connection,
        new: &'c NewAnnouncement,
        now: DateTime<Utc>,
        record: &'c RecordedResponse<'c>,
    ) -> impl Future<Output = StoreResult<Option<Creation>>> + Send + 'c;
}

/// Creates an announcement and its deliveries atomically; see `Store::create_announcement`.
pub(super) async fn create<DB>(
    pool: &Pool<DB>,
    new: &NewAnnouncement,
    idempotency: Option<IdempotencyCompletion>,
) -> StoreResult<Creation>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    let now = Utc::now();
    if let (true, Audience::All | Audience::Topic(_), Some(completion)) =
        (DB::FAN_OUT_ALONE, &new.audience, &idempotency)
    {
        if let Some(record) = RecordedResponse::render(new, now, completion) {
            let mut conn = pool.acquire().await?;
            if let Some(creation) = DB::fan_out_all_recorded(&mut conn, new, now, &record).await? {
                return Ok(creation);
            }
        }
    }
    if let (true, Audience::All | Audience::Topic(_), None) =
        (DB::FAN_OUT_ALONE, &new.audience, &idempotency)
    {
        let mut conn = pool.acquire().await?;
        let counts = DB::fan_out_all(&mut conn, new, now).await?;
        return Ok(counts.map_or(Creation::NoChannel, |counts| {
            Creation::Created(created(new, counts, now))
        }));
    }
    let mut tx = DB::begin_write(pool).await?;
    let Some(counts) = insert_in_tx(&mut tx, new, now).await? else {
        return Ok(Creation::NoChannel);
    };
    commit_created(tx, new, counts, now, idempotency).await
}

/// The announcement row and its deliveries inside the caller's transaction (REST announcements
/// and chain events share it). `None`, creating nothing, when the channel is not the tenant's.
pub(super) async fn insert_in_tx<DB>(
    tx: &mut Transaction<'_, DB>,
    new: &NewAnnouncement,
    now: DateTime<Utc>,
) -> StoreResult<Option<Counts>>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    let conn: &mut DB::Connection = tx;
    let addresses = match &new.audience {
        Audience::All | Audience::Topic(_) => return DB::fan_out_all(conn, new, now).await,
        Audience::Addresses(addresses) => addresses,
    };
    if !owns_channel::<DB>(conn, new).await? {
        return Ok(None);
    }
    insert_row::<DB>(conn, new, now).await?;
    let counts = insert_listed::<DB>(conn, new, addresses, now).await?;
    settle_totals::<DB>(conn, new, &counts).await?;
    Ok(Some(counts))
}

/// Whether the announcement's channel exists, is live, and belongs to its tenant. The row lock
/// (Postgres `FOR SHARE`) keeps a concurrent delete from slipping in before the transaction
/// commits; SQLite's single writer does the same.
pub(super) async fn owns_channel<DB>(
    conn: &mut DB::Connection,
    new: &NewAnnouncement,
) -> StoreResult<bool>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
{
    let sql = format!(
        "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL {lock}",
        lock = DB::row_lock(RowLock::Share),
    );
    let found: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(new.channel.as_str())
        .bind(new.tenant.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// The announcement row, `queued` with a total of 0 until `settle_totals` sets both.
pub(super) async fn insert_row<DB>(
    conn: &mut DB::Connection,
    new: &NewAnnouncement,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
{
    sqlx::query(
        "INSERT INTO announcements (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic, send_at, content) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $7, $8, $9)",
    )
    .bind(new.id.as_str())
    .bind(new.tenant.as_str())
    .bind(new.channel.as_str())
    .bind(new.text.as_str())
    .bind(new.priority.as_str())
    .bind(now)
    .bind(new.audience.topic())
    .bind(new.send_at)
    .bind(new.content_json().as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Targeted audience: listed addresses that are active subscribers get `pending` deliveries,
/// the rest `skipped` (reason `not_subscribed`). Returns the counts of the rows actually
/// created (a repeated address makes one row). `WHERE true` lets SQLite parse the upsert after
/// `INSERT … SELECT`; Postgres does not mind it.
async fn insert_listed<DB>(
    conn: &mut DB::Connection,
    new: &NewAnnouncement,
    addresses: &[Address],
    now: DateTime<Utc>,
) -> StoreResult<Counts>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    let sql = format!(
        "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, reason, next_attempt_at, created_at, updated_at) \
         SELECT $1, $2, list.value, $3, \
                CASE WHEN s.address IS NULL THEN 'skipped' ELSE 'pending' END, \
                CASE WHEN s.address IS NULL THEN 'not_subscribed' END, $6, $4, $4 \
         FROM {list} \
         LEFT JOIN subscribers s ON s.channel_id = $2 AND s.address = list.value AND s.status = 'active' \
         WHERE true ON CONFLICT (announcement_id, address) DO NOTHING",
        list = DB::text_rows(5),
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new.id.as_str())
        .bind(new.channel.as_str())
        .bind(new.priority.as_str())
        .bind(now)
        .bind(DB::text_list(addresses.iter().map(Address::as_str)))
        .bind(first_due(new, now))
        .execute(&mut *conn)
        .await?;
    let groups: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM deliveries WHERE announcement_id = $1 GROUP BY status",
    )
    .bind(new.id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Counts::from_groups(groups))
}

/// Sets the row's total, its kept counts and its initial status from the deliveries created.
/// Rows settled at creation (skipped) are the pace's starting point: the pace counts only what
/// workers settle.
pub(super) async fn settle_totals<DB>(
    conn: &mut DB::Connection,
    new: &NewAnnouncement,
    counts: &Counts,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "UPDATE announcements SET total = $2, status = $3, delivered_count = $4, \
         failed_count = $5, skipped_count = $6, pace_settled = $7, mark_settled = $7 WHERE id = $1",
    )
    .bind(new.id.as_str())
    .bind(counts.total)
    .bind(initial_status(counts).as_str())
    .bind(counts.delivered)
    .bind(counts.failed)
    .bind(counts.skipped)
    .bind(counts.delivered + counts.failed + counts.skipped)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
