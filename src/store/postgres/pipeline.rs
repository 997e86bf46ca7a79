//! What only Postgres does in the pipeline ([`PipelineDialect`]); the rest of
//! [`PipelineStore`](crate::store::PipelineStore) is written once in `store/pipeline_sql.rs`.
//! MLS state rows travel as `bytea[]` arrays read with `UNNEST`, so a batch is one statement.
//! Work arrival is broadcast with `NOTIFY herald_deliveries` so workers in other replicas wake
//! at once.

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgListener, PgPool};

use crate::store::pipeline::*;
use crate::store::StoreResult;

impl PipelineDialect for sqlx::Postgres {
    async fn write_state(
        conn: &mut PgConnection,
        channel: &str,
        (upserts, deletes): (Entries, Vec<Vec<u8>>),
    ) -> StoreResult<()> {
        if !deletes.is_empty() {
            sqlx::query("DELETE FROM channel_state WHERE channel_id = $1 AND key = ANY($2)")
                .bind(channel)
                .bind(&deletes)
                .execute(&mut *conn)
                .await?;
        }
        if !upserts.is_empty() {
            let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = upserts.into_iter().unzip();
            sqlx::query(
                "INSERT INTO channel_state (channel_id, key, value) \
                 SELECT $1, k, v FROM UNNEST($2::bytea[], $3::bytea[]) AS u(k, v) \
                 ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(channel)
            .bind(&keys)
            .bind(&values)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn scan_state_ranges(
        pool: &PgPool,
        channel: &str,
        ranges: Vec<KeyRange>,
    ) -> StoreResult<Entries> {
        let (lo, hi): (Vec<Vec<u8>>, Vec<Vec<u8>>) = ranges.into_iter().unzip();
        Ok(sqlx::query_as(
            "SELECT s.key, s.value FROM UNNEST($2::bytea[], $3::bytea[]) AS r(lo, hi) \
             JOIN channel_state s ON s.channel_id = $1 AND s.key >= r.lo AND s.key < r.hi",
        )
        .bind(channel)
        .bind(&lo)
        .bind(&hi)
        .fetch_all(pool)
        .await?)
    }

    async fn wake_others(pool: &PgPool) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_CHANNEL)
            .execute(pool)
            .await?;
        Ok(())
    }

    async fn listen_others(pool: &PgPool) -> StoreResult<Option<Box<dyn WakeListener>>> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(WAKE_CHANNEL).await?;
        Ok(Some(Box::new(PgWakes(listener))))
    }
}

/// The `NOTIFY` channel of [`PipelineStore::wake_others`](crate::store::PipelineStore::wake_others).
const WAKE_CHANNEL: &str = "herald_deliveries";

/// Other replicas' wake-ups, heard on a `LISTEN` connection.
struct PgWakes(PgListener);

#[async_trait]
impl WakeListener for PgWakes {
    async fn recv(&mut self) -> StoreResult<()> {
        self.0.recv().await?;
        Ok(())
    }
}
