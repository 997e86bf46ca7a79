//! Keeps SQLite's write-ahead log short from the background (see [`Store::checkpoint`]), so
//! the delivery workers' commits never stop to copy it back into the database file.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Pause between checkpoints; one with nothing new in the log only reads its header. A
/// checkpoint copies each page changed since the last one back once (and syncs the file), so
/// the pages every send round rewrites (deliveries, their indexes) cost less the less often it
/// runs: at 1 s instead of 250 ms a first-contact broadcast used ~3% less CPU (the log then
/// peaks near the 64 MiB a commit would checkpoint itself at, see `SqliteStore::connect`).
const INTERVAL: Duration = Duration::from_secs(1);

/// Checkpoints until `shutdown` is cancelled.
pub async fn run(store: Arc<dyn Store>, shutdown: CancellationToken) {
    loop {
        if let Err(err) = store.checkpoint().await {
            tracing::debug!(error = %err, "WAL checkpoint failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
