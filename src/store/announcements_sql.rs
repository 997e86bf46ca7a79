//! Creating an announcement, written once for both backends as generic functions over
//! [`Dialect`]: the announcement row, the targeted audience's deliveries, settling the total and
//! status from the rows created, and completing an idempotency record.
//!
//! How the audience "all" (or a topic) is fanned out differs and is the one per-backend piece,
//! [`FanOutDialect`], in each backend's `announcements.rs`: one CTE statement on Postgres
//! (atomic on its own, so the common case needs no transaction), a few small statements in the
//! caller's transaction on SQLite. The other differences are [`Dialect`] items: the ownership
//! check's row lock and how a bound list of addresses reads as rows.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::dialect::{Dialect, RowLock};
use super::settle_sql;
use super::{
    Address, Announcement, AnnouncementId, AnnouncementStatus, Audience, CancelOutcome, Counts,
    Creation, IdempotencyCompletion, IdempotencyKey, NewAnnouncement, StoreResult, TenantId,
};

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

/// An unclaimed idempotency key and the response to record with it, for a single statement
/// that creates an announcement to audience "all" (or a topic) and records the key together.
/// The response depends on how many recipients the statement finds, so it is rendered ahead
/// as two texts: `empty` for none (the announcement completes at once), and `template` for
/// any other number `n`, which the statement writes with every [`RecordedResponse::SENTINEL`]
/// replaced by `n`.
pub(crate) struct RecordedResponse<'a> {
    pub key: &'a IdempotencyKey,
    pub request_hash: &'a str,
    pub status_code: u16,
    pub empty: String,
    pub template: String,
}

impl<'a> RecordedResponse<'a> {
    /// Stands in for the recipient count (total and pending) in `template`.
    pub const SENTINEL: i64 = i64::MAX;

    /// The two texts, or `None` when a replaced template would not be exactly what `render`
    /// gives: the sentinel also stands elsewhere in the response (the text quotes it, say).
    /// Checked by rendering a second count and comparing.
    fn render(
        new: &NewAnnouncement,
        now: DateTime<Utc>,
        completion: &'a IdempotencyCompletion,
    ) -> Option<Self> {
        let request_hash = completion.unclaimed_hash.as_deref()?;
        let with = |n: i64| {
            let counts = Counts {
                total: n,
                pending: n,
                ..Counts::default()
            };
            (completion.render)(&created(new, counts, now))
        };
        let (empty, template, two) = (with(0), with(Self::SENTINEL), with(2));
        let exact = template.status_code == two.status_code
            && empty.status_code == two.status_code
            && template.body.replace(&Self::SENTINEL.to_string(), "2") == two.body;
        exact.then_some(Self {
            key: &completion.key,
            request_hash,
            status_code: two.status_code,
            empty: empty.body,
            template: template.body,
        })
    }
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

/// Finishes a creation: the announcement as created, with the idempotency record (if any)
/// completed or inserted in the same transaction so a replay never sees a half-made one, then
/// the commit. An unclaimed key found recorded rolls everything back.
async fn commit_created<DB>(
    mut tx: Transaction<'_, DB>,
    new: &NewAnnouncement,
    counts: Counts,
    now: DateTime<Utc>,
    idempotency: Option<IdempotencyCompletion>,
) -> StoreResult<Creation>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let announcement = created(new, counts, now);
    if let Some(completion) = idempotency {
        let response = (completion.render)(&announcement);
        let key = &completion.key;
        match &completion.unclaimed_hash {
            None => {
                sqlx::query(
                    "UPDATE idempotency_keys SET state = 'done', status_code = $3, response_body = $4 \
                     WHERE tenant_id = $1 AND key = $2",
                )
                .bind(key.tenant.as_str())
                .bind(key.key.as_str())
                .bind(i32::from(response.status_code))
                .bind(response.body.as_str())
                .execute(&mut *tx)
                .await?;
            }
            // Inserted last, so the key's row lock is held only until the commit; a concurrent
            // request with the same key waits here, then finds the key recorded.
            Some(hash) => {
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys \
                       (tenant_id, key, request_hash, state, status_code, response_body, created_at) \
                     VALUES ($1, $2, $3, 'done', $4, $5, $6) ON CONFLICT (tenant_id, key) DO NOTHING",
                )
                .bind(key.tenant.as_str())
                .bind(key.key.as_str())
                .bind(hash.as_str())
                .bind(i32::from(response.status_code))
                .bind(response.body.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if DB::rows_affected(&inserted) == 0 {
                    tx.rollback().await?;
                    return Ok(Creation::KeyExists);
                }
            }
        }
    }
    tx.commit().await?;
    Ok(Creation::Created(announcement))
}

/// Cancels an announcement in one write transaction: every `pending` delivery (claimed by a
/// sender or not) ends `skipped` with reason `cancelled` in one statement, and the row gets
/// `cancelled_at` and status `completed`. What was sent stays as it is.
///
/// The rows keep their lease token: a sender publishing a batch at this instant still settles
/// what it published as `delivered` (settle may turn a cancelled row into `delivered` and
/// nothing else), and a sender about to publish sees the rows are no longer pending and gives
/// the batch up (see `PipelineStore::claimed_pending`).
pub(super) async fn cancel<DB>(
    pool: &Pool<DB>,
    tenant: &TenantId,
    id: &AnnouncementId,
    now: DateTime<Utc>,
) -> StoreResult<CancelOutcome>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
{
    let mut tx = DB::begin_write(pool).await?;
    let owned: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM announcements WHERE id = $1 AND tenant_id = $2")
            .bind(id.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    if owned.is_none() {
        return Ok(CancelOutcome::NotFound);
    }
    let skipped = sqlx::query(
        "UPDATE deliveries SET status = 'skipped', reason = 'cancelled', lease_owner = NULL, \
           lease_until = NULL, updated_at = $2 \
         WHERE announcement_id = $1 AND status = 'pending'",
    )
    .bind(id.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let skipped = DB::rows_affected(&skipped);
    if skipped == 0 {
        return Ok(CancelOutcome::Finished);
    }
    settle_sql::add_skipped::<DB>(&mut tx, id.as_str(), skipped, now).await?;
    sqlx::query(
        "UPDATE announcements SET cancelled_at = $2, status = 'completed', updated_at = $2 WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CancelOutcome::Cancelled(skipped))
}
