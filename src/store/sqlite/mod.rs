//! SQLite backend: the embedded default, for a single node and for `make run`.
//!
//! The database file (and its folder) is created on first start and runs in WAL mode so readers
//! never block the single writer. SQLite has no arrays, so address lists travel as one JSON text
//! parameter read with `json_each`, and its upsert needs `WHERE true` after an `INSERT … SELECT`
//! to parse. This file holds the connection; the [`Store`] SQL itself is shared with Postgres
//! (`store/store_sql.rs` and the other `store/*_sql.rs`), and the modules below keep what only
//! SQLite does (`announcements.rs`: the stepwise fan-out, `pipeline.rs`: multi-row MLS state).

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::*;

mod announcements;
mod pipeline;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writes: WriteGate,
}

/// Queues this process's hot write transactions (claims, lease renewals, MLS state, settles)
/// first come, first served. SQLite has one writer; without the gate a writer that finds the
/// lock taken sleeps in SQLite's busy handler (1, 2, 5, 10 … ms) even when the holder is done
/// after a fraction of that; with the gate it starts as soon as the previous writer commits.
/// (Claims under load still take 5–10 ms, most of it waiting behind the round's state write:
/// the gate orders the wait, it does not shorten the holder.) The busy timeout still covers
/// writers outside the gate (API requests, fan-out) and other processes.
#[derive(Clone, Default)]
struct WriteGate(std::sync::Arc<tokio::sync::Mutex<()>>);

impl WriteGate {
    /// Waits for this process's turn to write; the turn ends when the guard drops (after the
    /// commit).
    async fn enter(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.0.clone().lock_owned().await
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10))
            // Reads (MLS group state of hundreds of DMs per send round) come straight from the
            // OS page cache through a shared mapping instead of a pread per page.
            .pragma("mmap_size", "268435456")
            // Statement journals (every multi-row upsert inside a transaction keeps one) stay in
            // memory instead of spilling to a temporary file past 64 KiB.
            .pragma("temp_store", "memory")
            // Rows cross from SQLite's worker thread to the task over a bounded channel; a claim
            // returns 500 rows, and at the default of 50 the worker thread would wait for the
            // task to drain the channel several times per claim.
            .row_buffer_size(1024)
            // `herald serve` checkpoints the log in the background (`Store::checkpoint`); a
            // commit checkpoints itself only past 64 MiB of log (the default is 4 MiB, which
            // made every other 500-message send round pay ~15 ms for it).
            .pragma("wal_autocheckpoint", "16384");
        if let Some(folder) = options.get_filename().parent() {
            if !folder.as_os_str().is_empty() {
                std::fs::create_dir_all(folder)?;
            }
        }
        create_private(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            writes: WriteGate::default(),
        })
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Creates the database file readable by its owner only (0600) if it does not exist yet. The
/// file holds sealed keys and subscriber data; SQLite gives the `-wal` and `-shm` files it
/// creates later the main file's permissions, so they are private too.
#[cfg(unix)]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
