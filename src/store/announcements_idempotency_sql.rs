//! Recording an idempotency key with the announcement its request created, so a replay never
//! sees a half-made one, written once for both backends: [`commit_created`] completes (or
//! inserts) the key's record in the creation's own transaction, and [`RecordedResponse`]
//! renders the response ahead for a backend whose fan-out statement records the key itself
//! (`FanOutDialect::fan_out_all_recorded`). `announcements_sql.rs` re-exports
//! [`RecordedResponse`], where the backends import it.

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, IntoArguments, Transaction, Type};

use super::announcements_sql::created;
use super::dialect::Dialect;
use super::{
    Counts, Creation, IdempotencyCompletion, IdempotencyKey, NewAnnouncement, StoreResult,
};

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
    pub(super) fn render(
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

/// Finishes a creation: the announcement as created, with the idempotency record (if any)
/// completed or inserted in the same transaction so a replay never sees a half-made one, then
/// the commit. An unclaimed key found recorded rolls everything back.
pub(super) async fn commit_created<DB>(
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
