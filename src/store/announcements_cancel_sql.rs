//! Cancelling an announcement, written once for both backends as a generic function over
//! [`Dialect`]; `announcements_sql.rs` re-exports [`cancel`] for the store.

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::Dialect;
use super::settle_sql;
use super::{AnnouncementId, CancelOutcome, StoreResult, TenantId};

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
