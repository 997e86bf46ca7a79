//! Postgres: the self-service store (SQL shared with SQLite, see `store/selfservice_sql.rs`).

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::inbound_sql::impl_inbound;
use crate::store::selfservice::{ConsentRow, TopicRow};
use crate::store::selfservice_sql::impl_selfservice;
use crate::store::topics_sql::impl_topics;
use crate::store::*;

impl_selfservice!(
    PgStore,
    sqlx::Postgres,
    "json_array_elements_text(CAST($2 AS json)) AS value"
);
impl_topics!(
    PgStore,
    "json_array_elements_text(CAST($2 AS json)) AS value"
);
impl_inbound!(
    PgStore,
    "(SELECT value->>0 AS a, value->>1 AS b FROM json_array_elements(CAST($2 AS json))) AS v",
    "json_array_elements_text(CAST($2 AS json)) AS value"
);
