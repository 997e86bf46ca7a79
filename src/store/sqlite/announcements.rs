//! SQLite: fanning an announcement out to every receiving subscriber ([`FanOutDialect`]) as a
//! few small statements in the caller's transaction (SQLite has no data-modifying CTEs); the
//! rest of creating one is written once in `store/announcements_sql.rs`.

use chrono::Utc;
use sqlx::sqlite::SqliteConnection;
use sqlx::Sqlite;

use crate::store::announcements_sql::{
    first_due, insert_row, owns_channel, settle_totals, FanOutDialect, RecordedResponse,
};
use crate::store::*;

impl FanOutDialect for Sqlite {
    async fn fan_out_all(
        conn: &mut SqliteConnection,
        new: &NewAnnouncement,
        now: chrono::DateTime<Utc>,
    ) -> StoreResult<Option<Counts>> {
        // The ownership check holds to the commit: SQLite's single writer keeps it valid.
        if !owns_channel::<Sqlite>(conn, new).await? {
            return Ok(None);
        }
        insert_row::<Sqlite>(conn, new, now).await?;
        let sql = format!(
            "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
             SELECT $1, $2, s.address, $3, 'pending', $6, $4, $4 FROM subscribers s \
             WHERE s.channel_id = $2 AND s.status = 'active' AND ($5 IS NULL OR {topic})",
            topic = topic_filter("$5")
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.id.as_str())
            .bind(new.channel.as_str())
            .bind(new.priority.as_str())
            .bind(now)
            .bind(new.audience.topic())
            .bind(first_due(new, now))
            .execute(&mut *conn)
            .await?
            .rows_affected() as i64;
        let counts = Counts {
            total: inserted,
            pending: inserted,
            ..Counts::default()
        };
        settle_totals::<Sqlite>(conn, new, &counts).await?;
        Ok(Some(counts))
    }

    const FAN_OUT_ALONE: bool = false;

    /// No single statement here: a keyed announcement records its key in the transaction.
    async fn fan_out_all_recorded(
        _conn: &mut SqliteConnection,
        _new: &NewAnnouncement,
        _now: chrono::DateTime<Utc>,
        _record: &RecordedResponse<'_>,
    ) -> StoreResult<Option<Creation>> {
        Ok(None)
    }
}
