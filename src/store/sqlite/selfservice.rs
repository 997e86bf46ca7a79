//! SQLite: the self-service store (SQL shared with Postgres, see `store/selfservice_sql.rs`).

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::store::inbound_sql::impl_inbound;
use crate::store::selfservice::{ConsentRow, TopicRow};
use crate::store::selfservice_sql::impl_selfservice;
use crate::store::topics_sql::impl_topics;
use crate::store::*;

impl_selfservice!(SqliteStore, sqlx::Sqlite, "json_each($2)");
impl_topics!(SqliteStore, "json_each($2)");
impl_inbound!(SqliteStore, "(SELECT json_extract(value, '$[0]') AS a, json_extract(value, '$[1]') AS b FROM json_each($2)) AS v", "json_each($2)");
