//! Opening write transactions the same way on both backends.
//!
//! SQLite runs a plain `BEGIN` as a deferred transaction: it starts as a reader and becomes a
//! writer at its first write. In WAL mode that upgrade fails at once with `SQLITE_BUSY` (the
//! busy timeout does not apply) when another connection committed in between, so a transaction
//! that reads before it writes (a topic preference checks the topic's mode first) fails under
//! concurrent writers such as the delivery workers. `BEGIN IMMEDIATE` takes the write lock up
//! front and waits for it under the busy timeout. Postgres needs nothing of the kind.

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
        self.begin()
    }
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}
