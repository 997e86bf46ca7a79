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

/// Records each peer's DM group id: one indexed UPDATE per pair in one write transaction.
/// SQLite plans the `UPDATE … FROM json_each` join as a scan of every peer per pair; at 10,000
/// recipients that held the write lock past other writers' busy timeout (a POST failed).
async fn set_peer_groups_sql(
    pool: &sqlx::SqlitePool,
    channel: &ChannelId,
    groups: &[(String, String)],
) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (inbox, group) in groups {
        sqlx::query(
            "UPDATE inbound_peers SET group_id = $3 WHERE channel_id = $1 AND inbox_id = $2",
        )
        .bind(channel.as_str())
        .bind(inbox)
        .bind(group)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
