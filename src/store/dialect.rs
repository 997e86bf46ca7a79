//! What really differs between the two SQL backends, in one place, so shared store code is
//! written once as generic code over [`Dialect`] instead of macros.

use std::future::Future;

use sqlx::{Database, Pool, Transaction};

use super::write_tx::BeginWrite;

/// A backend herald stores into: Postgres or SQLite.
pub(crate) trait Dialect: Database {
    /// Rows a statement changed (each backend's result type has its own method).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// A transaction meant to write (SQLite: `BEGIN IMMEDIATE`, see `write_tx.rs`).
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send;
}

impl Dialect for sqlx::Postgres {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send {
        pool.begin_write()
    }
}

impl Dialect for sqlx::Sqlite {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send {
        pool.begin_write()
    }
}

/// A store over one connection pool of a [`Dialect`]; shared store code is implemented for
/// every such store.
pub(crate) trait SqlPool: Send + Sync {
    type Db: Dialect;

    fn sql_pool(&self) -> &Pool<Self::Db>;
}

impl SqlPool for super::PgStore {
    type Db = sqlx::Postgres;

    fn sql_pool(&self) -> &Pool<Self::Db> {
        self.pool()
    }
}

impl SqlPool for super::SqliteStore {
    type Db = sqlx::Sqlite;

    fn sql_pool(&self) -> &Pool<Self::Db> {
        self.pool()
    }
}
