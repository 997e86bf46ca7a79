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

    /// A table expression with one row per `[id, delivered, failed, skipped, moved]` array
    /// of the JSON array bound as parameter `$param` (see `tally_sql.rs`): columns `id`
    /// (text) and `d`, `f`, `s`, `m` (integers), aliased `alias`.
    fn tally_rows(param: u8, alias: &str) -> String;

    /// Moves what the database's write-ahead log holds back into its main file, if the
    /// backend needs telling (SQLite: a passive checkpoint; Postgres does it on its own).
    fn checkpoint(pool: &Pool<Self>) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// The statement recording each inbound peer's DM group id: channel bound as `$1`, a
    /// JSON object mapping inbox id to group id as `$2` (see [`json_object`]); only peers
    /// already known are written.
    fn set_peer_groups_sql() -> String;

    /// The clause a `SELECT` ends with to take `lock` on the rows it reads (Postgres); empty
    /// on SQLite, where a write transaction holds the whole database and one writer runs at
    /// a time.
    fn row_lock(lock: RowLock) -> &'static str;

    /// A list of integers bound as one parameter (Postgres: `bigint[]`, SQLite: a JSON array).
    type IntList: for<'q> Encode<'q, Self> + Type<Self> + Send + Sync;

    /// Builds the bound value of a list of integers; see [`Dialect::int_in`].
    fn int_list(items: impl IntoIterator<Item = i64>) -> Self::IntList;

    /// A condition: `column` is one of the integers of the [`Dialect::IntList`] bound as
    /// parameter `$param`.
    fn int_in(column: &str, param: u8) -> String;

    /// A table expression with one row per integer of the [`Dialect::IntList`] bound as
    /// parameter `$param`, in column `value`, aliased `list`.
    fn int_rows(param: u8) -> String;

    /// A boolean expression an upsert's `RETURNING` can read to tell a fresh insert from an
    /// update (Postgres: `xmax = 0`); `None` where the backend has none (SQLite), so callers
    /// insert and update in two statements instead.
    fn upsert_inserted() -> Option<&'static str>;
}

/// Row locks a read can take for the rest of its transaction (see [`Dialect::row_lock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Concurrent writers of these rows wait (e.g. a delete of a channel being announced on).
    Share,
    /// Claim the rows; rows another transaction holds are passed over, not waited for.
    UpdateSkipLocked,
}

/// A JSON object of `key: value` strings, bound as text (for [`Dialect::set_peer_groups_sql`]):
/// a backend's JSON table function yields its members as (key, value) rows of text with no
/// per-row JSON parsing.
pub(crate) fn json_object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
        .collect();
    serde_json::to_string(&map).expect("string maps always serialize")
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

    fn tally_rows(param: u8, alias: &str) -> String {
        format!(
            "(SELECT value->>0 AS id, CAST(value->>1 AS bigint) AS d, \
             CAST(value->>2 AS bigint) AS f, CAST(value->>3 AS bigint) AS s, \
             CAST(value->>4 AS bigint) AS m \
             FROM json_array_elements(CAST(${param} AS json))) AS {alias}"
        )
    }

    async fn checkpoint(_pool: &Pool<Self>) -> sqlx::Result<()> {
        Ok(())
    }

    /// One `UPDATE … FROM` join over the object's members.
    fn set_peer_groups_sql() -> String {
        "UPDATE inbound_peers SET group_id = v.value \
         FROM json_each_text(CAST($2 AS json)) AS v \
         WHERE inbound_peers.channel_id = $1 AND inbound_peers.inbox_id = v.key"
            .to_owned()
    }

    fn row_lock(lock: RowLock) -> &'static str {
        match lock {
            RowLock::Share => "FOR SHARE",
            RowLock::UpdateSkipLocked => "FOR UPDATE SKIP LOCKED",
        }
    }

    type IntList = Vec<i64>;

    fn int_list(items: impl IntoIterator<Item = i64>) -> Self::IntList {
        items.into_iter().collect()
    }

    fn int_in(column: &str, param: u8) -> String {
        format!("{column} = ANY(${param})")
    }

    fn int_rows(param: u8) -> String {
        format!("unnest(CAST(${param} AS bigint[])) AS list(value)")
    }

    fn upsert_inserted() -> Option<&'static str> {
        Some("xmax = 0")
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

    fn tally_rows(param: u8, alias: &str) -> String {
        format!(
            "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS d, \
             json_extract(value, '$[2]') AS f, json_extract(value, '$[3]') AS s, \
             json_extract(value, '$[4]') AS m FROM json_each(${param})) AS {alias}"
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
    /// `group_id` is written: one primary-key probe per member, linear in the members
    /// whatever the channel's number of peers. The portable `UPDATE … FROM json_each` join is
    /// planned as a scan of every peer of the channel per member (17 s for 5,000 members);
    /// with the members materialized first it scans the channel's peers once (slower than
    /// this once they outnumber the members); one UPDATE per member took ~0.5 s at 10,000
    /// recipients, holding the write lock meanwhile. json_each over an object yields each
    /// member's key and value as text: no per-row `json_extract` (as `[inbox, group]` pairs
    /// needed, three per row, ~15% more CPU).
    fn set_peer_groups_sql() -> String {
        "INSERT INTO inbound_peers (channel_id, inbox_id, address, first_seen_at, group_id) \
         SELECT $1, v.key, '', '', v.value FROM json_each($2) AS v \
         WHERE EXISTS (SELECT 1 FROM inbound_peers p WHERE p.channel_id = $1 AND p.inbox_id = v.key) \
         ON CONFLICT (channel_id, inbox_id) DO UPDATE SET group_id = excluded.group_id"
            .to_owned()
    }

    fn row_lock(_lock: RowLock) -> &'static str {
        ""
    }

    type IntList = String;

    fn int_list(items: impl IntoIterator<Item = i64>) -> Self::IntList {
        serde_json::to_string(&items.into_iter().collect::<Vec<_>>())
            .expect("a list of integers always serializes")
    }

    fn int_in(column: &str, param: u8) -> String {
        format!("{column} IN (SELECT value FROM json_each(${param}))")
    }

    fn int_rows(param: u8) -> String {
        format!("json_each(${param}) AS list")
    }

    fn upsert_inserted() -> Option<&'static str> {
        None
    }
}

/// A store over one connection pool of a [`Dialect`]; shared store code is implemented for
/// every such store.
pub(crate) trait SqlPool: Send + Sync {
    type Db: Dialect;

    fn sql_pool(&self) -> &Pool<Self::Db>;

    /// Waits for this process's turn at the hot writes (claims, leases, MLS state,
    /// settlements); the turn ends when the returned guard drops, after the commit. SQLite
    /// queues them (see its `WriteGate`); Postgres needs no turn (`None`): row locks suffice.
    fn write_turn(&self) -> impl Future<Output = WriteTurn> + Send;
}

/// A turn at writing, held until dropped (see [`SqlPool::write_turn`]).
pub(crate) type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

impl SqlPool for super::PgStore {
    type Db = sqlx::Postgres;

    fn sql_pool(&self) -> &Pool<Self::Db> {
        self.pool()
    }

    fn write_turn(&self) -> impl Future<Output = WriteTurn> + Send {
        std::future::ready(None)
    }
}

impl SqlPool for super::SqliteStore {
    type Db = sqlx::Sqlite;

    fn sql_pool(&self) -> &Pool<Self::Db> {
        self.pool()
    }

    async fn write_turn(&self) -> WriteTurn {
        Some(self.write_gate_turn().await)
    }
}
