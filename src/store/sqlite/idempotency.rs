//! SQLite: idempotency records (SQL shared with the other backend, see
//! `store/idempotency_sql.rs`).

use chrono::Utc;

use crate::store::idempotency_sql::impl_idempotency;
use crate::store::*;

impl_idempotency!(sqlx::sqlite::SqlitePool);
