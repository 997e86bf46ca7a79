//! What only SQLite does in the pipeline ([`PipelineDialect`]) and its write turn; the rest of
//! [`PipelineStore`](crate::store::PipelineStore) is written once in `store/pipeline_sql.rs`.
//! SQLite has no arrays: MLS state rows travel as multi-row statements, key ranges as JSON text.
//! One process serves the database, so there is nobody else to wake.

use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::SqliteStore;
use crate::store::pipeline::*;
use crate::store::StoreResult;

/// Rows per multi-row state statement (3 parameters each, far below SQLite's 32,766).
const STATE_ROWS_PER_STATEMENT: usize = 500;

impl SqliteStore {
    /// This process's turn at the hot writes (see `WriteGate`), for
    /// [`SqlPool::write_turn`](crate::store::dialect::SqlPool::write_turn).
    pub(in crate::store) async fn write_gate_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.writes.enter().await
    }
}

impl PipelineDialect for sqlx::Sqlite {
    async fn scan_state_ranges(
        pool: &SqlitePool,
        channel: &str,
        ranges: Vec<KeyRange>,
    ) -> StoreResult<Entries> {
        let bounds: Vec<[String; 2]> = ranges
            .iter()
            .map(|(lo, hi)| [hex::encode(lo), hex::encode(hi)])
            .collect();
        // The ranges drive the loop (CROSS JOIN keeps them outside): one primary-key range
        // scan per prefix, all in one statement.
        Ok(sqlx::query_as(
            "SELECT s.key, s.value FROM json_each($2) AS r CROSS JOIN channel_state AS s \
             WHERE s.channel_id = $1 AND s.key >= unhex(r.value ->> 0) AND s.key < unhex(r.value ->> 1)",
        )
        .bind(channel)
        .bind(serde_json::to_string(&bounds).expect("hex strings serialize"))
        .fetch_all(pool)
        .await?)
    }

    async fn write_state(
        conn: &mut SqliteConnection,
        channel: &str,
        (upserts, deletes): (Entries, Vec<Vec<u8>>),
    ) -> StoreResult<()> {
        // Multi-row statements: one round trip to SQLite's worker thread per chunk, not per
        // key (a repeat send round rewrites ~500 ratchet states).
        for chunk in deletes.chunks(STATE_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM channel_state WHERE channel_id = ");
            q.push_bind(channel).push(" AND key IN (");
            let mut keys = q.separated(", ");
            for key in chunk {
                keys.push_bind(key);
            }
            q.push(")").build().execute(&mut *conn).await?;
        }
        for chunk in upserts.chunks(STATE_ROWS_PER_STATEMENT) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO channel_state (channel_id, key, value) ");
            q.push_values(chunk, |mut row, (key, value)| {
                row.push_bind(channel).push_bind(key).push_bind(value);
            });
            q.push(" ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value");
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn wake_others(_pool: &SqlitePool) -> StoreResult<()> {
        Ok(())
    }

    async fn listen_others(_pool: &SqlitePool) -> StoreResult<Option<Box<dyn WakeListener>>> {
        Ok(None)
    }
}
