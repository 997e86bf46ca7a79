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

/// Records each peer's DM group id in one `UPDATE … FROM` join over the bound JSON pairs.
async fn set_peer_groups_sql(
    pool: &sqlx::PgPool,
    channel: &ChannelId,
    groups: &[(String, String)],
) -> StoreResult<()> {
    let list = crate::store::inbound_sql::json_pairs(
        groups
            .iter()
            .map(|(inbox, group)| (inbox.as_str(), group.as_str())),
    );
    sqlx::query(
        "UPDATE inbound_peers SET group_id = v.b \
         FROM (SELECT value->>0 AS a, value->>1 AS b FROM json_array_elements(CAST($2 AS json))) AS v \
         WHERE inbound_peers.channel_id = $1 AND inbound_peers.inbox_id = v.a",
    )
    .bind(channel.as_str())
    .bind(&list)
    .execute(pool)
    .await?;
    Ok(())
}
