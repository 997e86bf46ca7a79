//! Opening write transactions the same way on both backends.
//!
//! SQLite runs a plain `BEGIN` as a deferred transaction: it starts as a reader and becomes a
//! writer at its first write. In WAL mode that upgrade fails at once with `SQLITE_BUSY` (the
//! busy timeout does not apply) when another connection committed in between, so a transaction
//! that reads before it writes (a topic preference checks the topic's mode first) fails under
//! concurrent writers such as the delivery workers. `BEGIN IMMEDIATE` takes the write lock up
//! front and waits for it under the busy timeout. Postgres needs nothing of the kind.
//!
//! On both, the `BEGIN` runs to its end even when the caller is cancelled (see [`run_to_end`]).

use std::future::Future;

use sqlx::{Database, Transaction};

/// `begin_write()`: a transaction meant to write, started so that it cannot fail to upgrade.
pub(crate) trait BeginWrite {
    type Db: Database;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send {
        let pool = self.clone();
        run_to_end(async move { pool.begin().await })
    }
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send {
        let pool = self.clone();
        run_to_end(async move { pool.begin_with("BEGIN IMMEDIATE").await })
    }
}

/// Runs the `BEGIN` on a task of its own, so that it ends even when the caller's future is
/// dropped (an HTTP client hanging up, a worker giving a round up); the transaction it began
/// is then dropped, so rolled back, on that task. Dropped while waiting for the answer to its
/// `BEGIN`, sqlx's Postgres driver has not counted the transaction yet, so nothing rolls it
/// back: the connection went back to the pool inside it, every later statement on it ran in
/// that transaction, and its row locks (a channel's sender lease row) were never released
/// (tests/it/outage/transactions.rs `a_write_cancelled_at_any_point_leaves_no_transaction_open`).
async fn run_to_end<DB: sqlx::Database>(
    begin: impl Future<Output = sqlx::Result<Transaction<'static, DB>>> + Send + 'static,
) -> sqlx::Result<Transaction<'static, DB>> {
    match tokio::spawn(begin).await {
        Ok(begun) => begun,
        // Never aborted; a panic stays a panic.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
