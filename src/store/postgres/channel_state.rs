//! Postgres: channel identity material for workers (SQL shared with the other backend, see
//! `store/channel_state_sql.rs`).

use chrono::Utc;

use crate::store::channel_state_sql::impl_channel_state;
use crate::store::*;

impl_channel_state!(sqlx::postgres::PgPool);
