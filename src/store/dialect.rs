//! What really differs between the two SQL backends, in one place, so shared store code is
//! written once as generic code over [`Dialect`] instead of macros.

use std::future::Future;

use sqlx::{Database, Encode, Pool, Transaction, Type};

use super::write_tx::BeginWrite;

/// A backend herald stores into: Postgres or SQLite.
pub(crate) trait Dialect: Database {
    /// Rows a statement changed (each backend's result type has its own method).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// A transaction meant to write (SQLite: `BEGIN IMMEDIATE`, see `write_tx.rs`).
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send;

    /// A list of strings bound as one parameter (Postgres: `text[]`, SQLite: a JSON array).
    type TextList: for<'q> Encode<'q, Self> + Type<Self> + Send + Sync;

    /// Builds the bound value of a list of strings; see [`Dialect::text_rows`].
    fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Self::TextList;

    /// A table expression with one row per item of the [`Dialect::TextList`] bound as
    /// parameter `$param`, its text in column `value`, aliased `list` (use it in `FROM` / `IN (SELECT value …)`).
    fn text_rows(param: u8) -> String;

    /// A table expression with one row per `[a, b]` pair of the JSON array (see
    /// [`json_pairs`]) bound as parameter `$param`, columns `a` and `b`, aliased `alias`.
    fn pair_rows(param: u8, alias: &str) -> String;

    /// Moves what the database's write-ahead log holds back into its main file, if the
    /// backend needs telling (SQLite: a passive checkpoint; Postgres does it on its own).
    fn checkpoint(pool: &Pool<Self>) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// The statement recording each inbound peer's DM group id: channel bound as `$1`, the
    /// [`json_pairs`] of (inbox id, group id) as `$2`; only peers already known are written.
    fn set_peer_groups_sql() -> String;
}

/// A JSON array of string pairs, bound as text for [`Dialect::pair_rows`].
pub(crate) fn json_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let list: Vec<[&str; 2]> = pairs.into_iter().map(|(a, b)| [a, b]).collect();
    serde_json::to_string(&list).expect("string pairs always serialize")
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

    type TextList = Vec<String>;

    fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Self::TextList {
        items.into_iter().map(str::to_owned).collect()
    }

    fn text_rows(param: u8) -> String {
        format!("unnest(CAST(${param} AS text[])) AS list(value)")
    }

    fn pair_rows(param: u8, alias: &str) -> String {
        format!(
            "(SELECT value->>0 AS a, value->>1 AS b \
             FROM json_array_elements(CAST(${param} AS json))) AS {alias}"
        )
    }

    async fn checkpoint(_pool: &Pool<Self>) -> sqlx::Result<()> {
        Ok(())
    }

    /// One `UPDATE … FROM` join over the pairs.
    fn set_peer_groups_sql() -> String {
        format!(
            "UPDATE inbound_peers SET group_id = v.b FROM {pairs} \
             WHERE inbound_peers.channel_id = $1 AND inbound_peers.inbox_id = v.a",
            pairs = Self::pair_rows(2, "v"),
        )
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

    type TextList = String;

    fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Self::TextList {
        serde_json::to_string(&items.into_iter().collect::<Vec<_>>())
            .expect("a list of strings always serializes")
    }

    fn text_rows(param: u8) -> String {
        format!("json_each(${param}) AS list")
    }

    fn pair_rows(param: u8, alias: &str) -> String {
        format!(
            "(SELECT json_extract(value, '$[0]') AS a, json_extract(value, '$[1]') AS b \
             FROM json_each(${param})) AS {alias}"
        )
    }

    /// Passive: copies what readers no longer need from the log into the database file; never
    /// waits for (or blocks) writers and readers.
    async fn checkpoint(pool: &Pool<Self>) -> sqlx::Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(pool)
            .await?;
        Ok(())
    }

    /// An upsert whose rows always conflict (only known peers are selected), so only
    /// `group_id` is written: linear in the pairs. The portable `UPDATE … FROM json_each` join
    /// is planned as a scan of every peer per pair, and one UPDATE per pair took ~0.5 s at
    /// 10,000 recipients, holding the write lock meanwhile (an announcement POST waited behind
    /// it).
    fn set_peer_groups_sql() -> String {
        "INSERT INTO inbound_peers (channel_id, inbox_id, address, first_seen_at, group_id) \
         SELECT $1, json_extract(value, '$[0]'), '', '', json_extract(value, '$[1]') \
         FROM json_each($2) \
         WHERE EXISTS (SELECT 1 FROM inbound_peers p \
                       WHERE p.channel_id = $1 AND p.inbox_id = json_extract(value, '$[0]')) \
         ON CONFLICT (channel_id, inbox_id) DO UPDATE SET group_id = excluded.group_id"
            .to_owned()
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
