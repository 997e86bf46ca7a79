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

/// Records each peer's DM group id in one statement, linear in the pairs: an upsert whose
/// rows always conflict (only known peers are selected), so only `group_id` is written. The
/// portable `UPDATE … FROM json_each` join is planned as a scan of every peer per pair, and
/// one UPDATE per pair took ~0.5 s at 10,000 recipients, holding the write lock meanwhile
/// (an announcement POST waited behind it).
async fn set_peer_groups_sql(
    pool: &sqlx::SqlitePool,
    channel: &ChannelId,
    groups: &[(String, String)],
) -> StoreResult<()> {
    let list = crate::store::inbound_sql::json_pairs(
        groups
            .iter()
            .map(|(inbox, group)| (inbox.as_str(), group.as_str())),
    );
    sqlx::query(
        "INSERT INTO inbound_peers (channel_id, inbox_id, address, first_seen_at, group_id) \
         SELECT $1, json_extract(value, '$[0]'), '', '', json_extract(value, '$[1]') \
         FROM json_each($2) \
         WHERE EXISTS (SELECT 1 FROM inbound_peers p \
                       WHERE p.channel_id = $1 AND p.inbox_id = json_extract(value, '$[0]')) \
         ON CONFLICT (channel_id, inbox_id) DO UPDATE SET group_id = excluded.group_id",
    )
    .bind(channel.as_str())
    .bind(&list)
    .execute(pool)
    .await?;
    Ok(())
}
