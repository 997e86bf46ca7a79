//! The pipeline's claim order, written once for both backends: which channels have due
//! deliveries and which first, whether a channel has a critical one due, and claiming a batch
//! (the bodies of those [`PipelineStore`](crate::store::PipelineStore) methods, which
//! `pipeline_sql.rs` delegates here).
//!
//! Every statement reads the claim-order index (channel, rank, id) through small probes built
//! here ([`first_due_rank`], [`claimable_probe`], [`due_probe`], [`due_at`]), so the plans
//! need no statistics: a fresh database, or statistics gathered in a quiet moment, otherwise
//! made Postgres scan and sort every pending row (issue 15).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use crate::domain::{Address, AnnouncementId, ChannelId};
use crate::store::dialect::{Dialect, RowLock, SqlPool};
use crate::store::pipeline::{ClaimedDelivery, SenderLease, RANK};
use crate::store::StoreResult;

type Row<DB> = <DB as sqlx::Database>::Row;

/// See [`PipelineStore::due_is_critical`](crate::store::PipelineStore::due_is_critical).
pub(super) async fn due_is_critical<S>(
    store: &S,
    channel: &ChannelId,
    now: DateTime<Utc>,
) -> StoreResult<bool>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    i32: Type<S::Db>,
    for<'r> (i32,): FromRow<'r, Row<S::Db>>,
{
    // The first due row in claim order is critical exactly when any due row is.
    let rank: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(due_probe("$1", "$2", 0)))
        .bind(channel.as_str())
        .bind(now)
        .fetch_optional(store.sql_pool())
        .await?;
    Ok(rank.is_some())
}

/// See [`PipelineStore::sender_candidates`](crate::store::PipelineStore::sender_candidates).
pub(super) async fn sender_candidates<S>(
    store: &S,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<ChannelId>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    String: Type<S::Db>,
    for<'r> (String,): FromRow<'r, Row<S::Db>>,
{
    // The channels with pending rows, found by skipping through the claim-order index
    // (one probe per channel), each ranked by its first due row in claim order. Grouping
    // every due row instead cost a scan of the whole backlog per poll (34 ms at 80,000
    // pending rows on Postgres, most of its CPU in the REST bench; issue 15). The ranks are
    // computed once per channel (MATERIALIZED: the filter and the sort each re-ran them).
    let sql = format!(
        "WITH RECURSIVE pending_channels(channel_id) AS ( \
           SELECT (SELECT channel_id FROM deliveries WHERE status = 'pending' \
                   ORDER BY channel_id LIMIT 1) \
           UNION ALL \
           SELECT (SELECT d.channel_id FROM deliveries d \
                   WHERE d.status = 'pending' AND d.channel_id > p.channel_id \
                   ORDER BY d.channel_id LIMIT 1) \
           FROM pending_channels p WHERE p.channel_id IS NOT NULL) \
         , ranked AS MATERIALIZED ( \
           SELECT p.channel_id, {rank} AS r FROM pending_channels p \
           WHERE p.channel_id IS NOT NULL) \
         SELECT channel_id FROM ranked WHERE r IS NOT NULL ORDER BY r, channel_id LIMIT $2",
        rank = first_due_rank("p.channel_id", "$1"),
    );
    let mut ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(store.sql_pool())
        .await?;
    let unregistered: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM channels WHERE xmtp_inbox_id IS NULL AND deleted_at IS NULL LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.sql_pool())
    .await?;
    ids.extend(unregistered);
    Ok(ids.into_iter().map(ChannelId::from_trusted).collect())
}

/// See [`PipelineStore::claim_deliveries`](crate::store::PipelineStore::claim_deliveries).
pub(super) async fn claim_deliveries<S>(
    store: &S,
    lease: &SenderLease,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<ClaimedDelivery>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> String: Encode<'q, S::Db>,
    String: Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> (i64, String, String, i32): FromRow<'r, Row<S::Db>>,
{
    // Postgres: concurrent workers pass over each other's rows instead of blocking;
    // SQLite: one writer at a time, so the plain `UPDATE … RETURNING` suffices.
    //
    // A batch takes rows of one rank only: the most urgent rank with a claimable row
    // (probed in the claim-order index), then by id, so the batch is read off the front
    // of the index whatever the statistics say. `ORDER BY rank, id` over all ranks was
    // planned without statistics (a fresh database, its first minute or so) as a bitmap
    // scan of every pending row of the channel and a sort: 110 ms per 500-row claim at
    // 140,000 pending in the REST bench (issue 15), which kept the worker from catching up.
    let sql = format!(
        "UPDATE deliveries SET lease_owner = $2, lease_token = $3, lease_until = $4 \
         WHERE id IN (SELECT id FROM deliveries WHERE channel_id = $1 AND status = 'pending' \
           AND {RANK} = COALESCE({critical}, {normal}, 2) \
           AND {due} AND (lease_until IS NULL OR lease_until < $5) \
           ORDER BY id LIMIT $6 {lock}) \
         RETURNING id, announcement_id, address, attempts",
        critical = claimable_probe(0),
        normal = claimable_probe(1),
        due = due_at("next_attempt_at", "$5"),
        lock = S::Db::row_lock(RowLock::UpdateSkipLocked),
    );
    let _turn = store.write_turn().await;
    let rows: Vec<(i64, String, String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(lease.channel.as_str())
        .bind(&lease.owner)
        .bind(lease.token.to_string())
        .bind(until)
        .bind(now)
        .bind(limit)
        .fetch_all(store.sql_pool())
        .await?;
    let mut claimed: Vec<ClaimedDelivery> = rows
        .into_iter()
        .map(|(id, announcement, address, attempts)| ClaimedDelivery {
            id,
            announcement_id: AnnouncementId::from_trusted(announcement),
            address: Address::from_trusted(address),
            attempts,
        })
        .collect();
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// The claim rank of the first due pending delivery of `channel` (a column or parameter) at
/// `now`, NULL when it has none: one probe of the claim-order index (channel, rank, id) per
/// rank, most urgent first. Probing each rank (rather than `ORDER BY rank, id LIMIT 1`) keeps
/// the plan without statistics, as in a fresh database: Postgres then sorted every pending row
/// of the channel to find the first (67 ms at 100,000 pending in the REST bench; issue 15).
fn first_due_rank(channel: &str, now: &str) -> String {
    let probe = |rank| format!("({})", due_probe(channel, now, rank));
    format!("COALESCE({}, {}, {})", probe(0), probe(1), probe(2))
}

/// A scalar subquery: `rank` when the claim's channel (`$1`) has a due pending delivery of that
/// rank at `$5` that no lease holds, else NULL. One probe of the claim-order index.
fn claimable_probe(rank: u8) -> String {
    format!(
        "(SELECT {rank} FROM deliveries d WHERE d.channel_id = $1 AND {RANK} = {rank} \
         AND d.status = 'pending' AND {due} \
         AND (d.lease_until IS NULL OR d.lease_until < $5) LIMIT 1)",
        due = due_at("d.next_attempt_at", "$5"),
    )
}

/// A query returning `rank` when `channel` has a due pending delivery of that rank at `now`,
/// no row otherwise: one probe of the claim-order index.
fn due_probe(channel: &str, now: &str, rank: u8) -> String {
    format!(
        "SELECT {rank} FROM deliveries d WHERE d.channel_id = {channel} AND {RANK} = {rank} \
         AND d.status = 'pending' AND {due} LIMIT 1",
        due = due_at("d.next_attempt_at", now),
    )
}

/// `column <= now`, spelled so that no index can serve it: a `COALESCE` is not an index
/// condition on either backend. The claim and its probes must read the claim-order index
/// (channel, rank, id), but `next_attempt_at <= now` also matches the index `deliveries_due`
/// (pending rows by due time), and Postgres took that one whenever its statistics said few
/// rows were pending, as they do when last gathered in a quiet moment: each 500-row claim then
/// read every pending row of every channel and sorted them (11 ms per claim, slower each round,
/// in a 10,000-recipient broadcast), and a probe for a rank with no rows read them all too.
fn due_at(column: &str, now: &str) -> String {
    format!("COALESCE({column} <= {now}, FALSE)")
}
