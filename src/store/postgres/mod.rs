//! Postgres backend: the production store. This file holds the connection; the [`Store`] SQL
//! itself is shared with SQLite (`store/store_sql.rs` and the other `store/*_sql.rs`), and the
//! modules below keep what only Postgres does (`announcements.rs`: the one-statement fan-out,
//! `pipeline.rs`: MLS state as arrays, `NOTIFY`/`LISTEN`).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::*;

mod announcements;
mod pipeline;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a query waits for a connection. sqlx keeps retrying a refused connect until this
/// runs out (default 30 s), so while Postgres is down it bounds how fast the API answers 503.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a session may sit in an open transaction doing nothing before Postgres ends it.
/// herald's transactions never wait on anything outside the database, so only a transaction
/// left open by mistake (a connection back in the pool mid-transaction) waits this long; ended,
/// it releases its row locks (a channel's sender lease, say) instead of stalling every writer
/// of that row for good, and the pool replaces the connection.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// Postgres-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?.options([(
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
