//! Creating an announcement: the statements both backends share, written once.
//!
//! How the audience "all" is fanned out differs (one CTE statement on Postgres, a transaction of
//! small statements on SQLite) and stays in each backend's `announcements.rs`. What is the same
//! is written here: the announcement row, the targeted audience's deliveries, settling the total
//! and status from the rows created, and completing an idempotency record. The one dialect
//! difference, reading a bound list of addresses as rows, is passed in.

use chrono::{DateTime, Utc};

use super::{Announcement, AnnouncementStatus, Counts, NewAnnouncement};

/// The announcement as just created: nothing delivered yet, completed at once if nobody is
/// waiting for it.
pub(super) fn created(new: &NewAnnouncement, counts: Counts, now: DateTime<Utc>) -> Announcement {
    Announcement {
        id: new.id.clone(),
        channel_id: new.channel.clone(),
        text: new.text.clone(),
        priority: new.priority,
        status: initial_status(&counts),
        counts,
        created_at: now,
    }
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

/// Expands to free functions over a `Transaction<'_, $db>`: `insert_row`, `insert_listed`,
/// `settle_totals` and `commit_created`. `$address_rows` is a table expression over bind
/// parameter `$5` yielding an `address` column, and `$bind_list` turns `&[Address]` into the
/// value bound there. The caller must `use crate::store::*`.
macro_rules! shared_announcement_sql {
    ($db:ty, $address_rows:literal, $bind_list:path) => {
        /// The announcement row, `queued` with a total of 0 until `settle_totals` sets both.
        pub(super) async fn insert_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            new: &NewAnnouncement,
            now: chrono::DateTime<chrono::Utc>,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO announcements (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at, topic) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $7)",
            )
            .bind(new.id.as_str())
            .bind(new.tenant.as_str())
            .bind(new.channel.as_str())
            .bind(&new.text)
            .bind(new.priority.as_str())
            .bind(now)
            .bind(new.audience.topic())
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Targeted audience: listed addresses that are active subscribers get `pending`
        /// deliveries, the rest `skipped` (reason `not_subscribed`). Returns the counts of the
        /// rows actually created (a repeated address makes one row). `WHERE true` lets SQLite
        /// parse the upsert after `INSERT … SELECT`; Postgres does not mind it.
        pub(super) async fn insert_listed(
            tx: &mut sqlx::Transaction<'_, $db>,
            new: &NewAnnouncement,
            addresses: &[Address],
            now: chrono::DateTime<chrono::Utc>,
        ) -> StoreResult<Counts> {
            sqlx::query(concat!(
                "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, reason, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, a.address, $3, \
                        CASE WHEN s.address IS NULL THEN 'skipped' ELSE 'pending' END, \
                        CASE WHEN s.address IS NULL THEN 'not_subscribed' END, $4, $4, $4 \
                 FROM ",
                $address_rows,
                " LEFT JOIN subscribers s ON s.channel_id = $2 AND s.address = a.address AND s.status = 'active' \
                 WHERE true ON CONFLICT (announcement_id, address) DO NOTHING"
            ))
            .bind(new.id.as_str())
            .bind(new.channel.as_str())
            .bind(new.priority.as_str())
            .bind(now)
            .bind($bind_list(addresses))
            .execute(&mut **tx)
            .await?;
            let groups: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, COUNT(*) FROM deliveries WHERE announcement_id = $1 GROUP BY status",
            )
            .bind(new.id.as_str())
            .fetch_all(&mut **tx)
            .await?;
            Ok(Counts::from_groups(groups))
        }

        /// Sets the row's total and its initial status from the deliveries created.
        pub(super) async fn settle_totals(
            tx: &mut sqlx::Transaction<'_, $db>,
            new: &NewAnnouncement,
            counts: &Counts,
        ) -> StoreResult<()> {
            let status = $crate::store::announcements_sql::initial_status(counts);
            sqlx::query("UPDATE announcements SET total = $2, status = $3 WHERE id = $1")
                .bind(new.id.as_str())
                .bind(counts.total)
                .bind(status.as_str())
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Finishes a creation: the announcement as created, with the idempotency record (if
        /// any) completed in the same transaction so a replay never sees a half-made one, then
        /// the commit.
        pub(super) async fn commit_created(
            mut tx: sqlx::Transaction<'_, $db>,
            new: &NewAnnouncement,
            counts: Counts,
            now: chrono::DateTime<chrono::Utc>,
            idempotency: Option<IdempotencyCompletion>,
        ) -> StoreResult<Announcement> {
            let announcement = $crate::store::announcements_sql::created(new, counts, now);
            if let Some(completion) = idempotency {
                let response = (completion.render)(&announcement);
                sqlx::query(
                    "UPDATE idempotency_keys SET state = 'done', status_code = $3, response_body = $4 \
                     WHERE tenant_id = $1 AND key = $2",
                )
                .bind(completion.key.tenant.as_str())
                .bind(&completion.key.key)
                .bind(i32::from(response.status_code))
                .bind(&response.body)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(announcement)
        }
    };
}

pub(super) use shared_announcement_sql;
