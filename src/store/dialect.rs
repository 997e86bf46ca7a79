//! What really differs between the two SQL backends, in one place, so shared store code is
//! written once as generic functions over [`Dialect`] instead of macros. (`BEGIN IMMEDIATE`
//! lives beside it in `write_tx.rs`.)

use sqlx::Database;

/// A backend herald stores into: Postgres or SQLite.
pub(crate) trait Dialect: Database {
    /// Rows a statement changed (each backend's result type has its own method).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Postgres {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for sqlx::Sqlite {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}
