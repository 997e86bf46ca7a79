//! Keeps SQLite's write-ahead log short from the background (see [`Store::checkpoint`]), so
//! the delivery workers' commits never stop to copy it back into the database file.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Pause between checkpoints; one with nothing new in the log only reads its header.
const INTERVAL: Duration = Duration::from_millis(250);

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
