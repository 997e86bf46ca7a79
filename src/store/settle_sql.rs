//! Settling a batch of deliveries, and the counts each announcement keeps on its own row
//! (migrations/postgres/0023): every write that moves a delivery out of (or into) a status
//! changes the counts in the same transaction, so reading an announcement's progress is O(1)
//! whatever its number of recipients.
//!
//! - [`settle`] knows each row's status before (it moves rows *from* one status per statement)
//!   and adds what moved, per announcement, in one statement ([`Tally`]);
//! - cancel and reorg retraction add the pending rows they skipped ([`add_skipped`]); a
//!   deleted channel's announcements are counted again from their rows ([`recount_channel`]).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use crate::store::dialect::Dialect;
use crate::store::pipeline::{group_outcomes, SenderLease, SettleOutcome, Settled};
use crate::store::StoreResult;

/// How far apart settle takes the pace marks: the pace then spans the last 30-60 s.
const MARK_EVERY: chrono::Duration = chrono::Duration::seconds(30);

/// What one settle moved for one announcement: the change of each kept count, and how many
/// rows left `pending` (`moved`: the pace's "settled").
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    delivered: i64,
    failed: i64,
    skipped: i64,
    moved: i64,
}

impl Tally {
    /// One delivery went from status `from` to `to` (as stored).
    fn record(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        self.bump(from, -1);
        self.bump(to, 1);
        if from == "pending" {
            self.moved += 1;
        }
    }

    fn bump(&mut self, status: &str, by: i64) {
        match status {
            "delivered" => self.delivered += by,
            "failed" => self.failed += by,
            "skipped" => self.skipped += by,
            _ => {}
        }
    }
}

/// Settles `results` under `lease` inside `tx`: each row moves from the status it has now
/// to its outcome's, the announcements' counts follow, and an announcement with nothing
/// pending left completes. Rows no longer under the lease are left alone.
pub(super) async fn settle<DB>(
    tx: &mut DB::Connection,
    lease: &SenderLease,
    results: &[(i64, SettleOutcome)],
    now: DateTime<Utc>,
) -> StoreResult<Settled>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
{
    // Each statement moves rows from one status (`$9`), so the counts know what each row
    // left. The test is spelled as a range so that it implies no partial index over pending
    // rows: a fresh database has no statistics for its first minute or so, and the planner
    // then walked the channel's whole pending backlog in claim order (62 ms per 500-row batch
    // at 20,000 pending in the REST bench; issue 15) instead of probing the listed ids.
    let settle_sql = format!(
        "UPDATE deliveries SET status = $1, reason = $2, next_attempt_at = $3, attempts = attempts + $4, \
           lease_owner = NULL, lease_until = NULL, updated_at = $5 \
         WHERE {ids} AND channel_id = $7 AND lease_token = $8 AND status >= $9 AND status <= $9 \
         RETURNING id, announcement_id",
        ids = DB::int_in("id", 6),
    );
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut rows = 0u64;
    for (outcome, ids) in group_outcomes(results) {
        let (status, reason, next, inc) = outcome.columns(now);
        // A settle moves pending rows. Only `delivered` also overwrites a row that ended
        // meanwhile (cancelled or retracted while being published: it did arrive); those are
        // looked for only when some listed rows were not pending.
        let from: &[&str] = if status == "delivered" {
            &["pending", "skipped", "failed", "delivered"]
        } else {
            &["pending"]
        };
        let mut left = ids;
        for before in from {
            if left.is_empty() {
                break;
            }
            let touched: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(settle_sql.as_str()))
                    .bind(status)
                    .bind(reason.clone())
                    .bind(next)
                    .bind(inc)
                    .bind(now)
                    .bind(DB::int_list(left.iter().copied()))
                    .bind(lease.channel.as_str())
                    .bind(lease.token.to_string())
                    .bind(*before)
                    .fetch_all(&mut *tx)
                    .await?;
            rows += touched.len() as u64;
            let done: HashSet<i64> = touched.iter().map(|(id, _)| *id).collect();
            for (_, announcement) in touched {
                tallies
                    .entry(announcement)
                    .or_default()
                    .record(before, status);
            }
            left.retain(|id| !done.contains(id));
        }
    }
    if tallies.is_empty() {
        return Ok(Settled {
            rows,
            announcements: Vec::new(),
        });
    }
    // Their statuses before, so the worker can log the ones that started or completed (a
    // primary-key probe per announcement; a batch touches one or two).
    let before_sql = format!(
        "SELECT id, status FROM announcements WHERE id IN (SELECT value FROM {list})",
        list = DB::text_rows(1),
    );
    let before: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(before_sql))
        .bind(DB::text_list(tallies.keys().map(String::as_str)))
        .fetch_all(&mut *tx)
        .await?;
    let after = apply::<DB>(tx, &tallies, now).await?;
    let mut changes: Vec<(String, String, String)> = after
        .into_iter()
        .map(|(id, to)| {
            let from = before
                .iter()
                .find(|(b, _)| *b == id)
                .map_or_else(String::new, |(_, s)| s.clone());
            (id, from, to)
        })
        .collect();
    changes.sort_unstable();
    Ok(Settled {
        rows,
        announcements: changes,
    })
}

/// Adds each announcement's tally to its kept counts in one statement, takes a pace mark when
/// the last is [`MARK_EVERY`] old, and sets its status: completed once nothing is pending,
/// sending otherwise. Returns each one's id and status after.
async fn apply<DB>(
    conn: &mut DB::Connection,
    tallies: &BTreeMap<String, Tally>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(String, String)>>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
{
    let list: Vec<serde_json::Value> = tallies
        .iter()
        .map(|(id, t)| serde_json::json!([id, t.delivered, t.failed, t.skipped, t.moved]))
        .collect();
    // Every right-hand side reads the row as it was before this statement (both backends).
    let roll = "mark_at IS NULL OR mark_at <= $2";
    let sql = format!(
        "UPDATE announcements SET \
           delivered_count = delivered_count + v.d, failed_count = failed_count + v.f, \
           skipped_count = skipped_count + v.s, updated_at = $1, \
           settled_at = CASE WHEN v.m > 0 THEN $1 ELSE settled_at END, \
           pace_at = CASE WHEN {roll} THEN COALESCE(mark_at, created_at) ELSE pace_at END, \
           pace_settled = CASE WHEN {roll} THEN mark_settled ELSE pace_settled END, \
           mark_at = CASE WHEN {roll} THEN $1 ELSE mark_at END, \
           mark_settled = CASE WHEN {roll} \
             THEN delivered_count + v.d + failed_count + v.f + skipped_count + v.s \
             ELSE mark_settled END, \
           status = CASE WHEN total <= delivered_count + v.d + failed_count + v.f + skipped_count + v.s \
             THEN 'completed' ELSE 'sending' END \
         FROM {rows} WHERE announcements.id = v.id \
         RETURNING announcements.id, announcements.status",
        rows = DB::tally_rows(3, "v"),
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(now - MARK_EVERY)
        .bind(serde_json::Value::Array(list).to_string())
        .fetch_all(&mut *conn)
        .await?)
}

/// Adds `n` rows a bulk move took from `pending` to `skipped` (cancel, reorg retraction) to
/// the kept count of `announcement`, in the caller's transaction; `now` is when they settled.
/// Exact: such a move takes only pending rows, and a settle of the same rows (a late
/// `delivered`) moves them on and corrects the counts itself.
pub(super) async fn add_skipped<DB>(
    conn: &mut DB::Connection,
    announcement: &str,
    n: u64,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // A count, not user input: written into the statement so callers need no integer bounds.
    let sql = format!(
        "UPDATE announcements SET skipped_count = skipped_count + {n}, settled_at = $1 \
         WHERE id = $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(announcement)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the kept counts of the channel's announcements that still count something pending
/// from their delivery rows (the channel was deleted: its pending rows were skipped), in the
/// caller's transaction; `now` is when their last deliveries settled.
pub(super) async fn recount_channel<DB>(
    conn: &mut DB::Connection,
    channel: &str,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let count = |status: &str| {
        format!(
            "(SELECT COUNT(*) FROM deliveries d WHERE d.announcement_id = announcements.id \
             AND d.status = '{status}')"
        )
    };
    let sql = format!(
        "UPDATE announcements SET delivered_count = {}, failed_count = {}, skipped_count = {}, \
         settled_at = $1 \
         WHERE channel_id = $2 AND total > delivered_count + failed_count + skipped_count",
        count("delivered"),
        count("failed"),
        count("skipped"),
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(channel)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
