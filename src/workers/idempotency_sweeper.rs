//! Deletes idempotency records older than the 24-hour window, in small batches.
//!
//! Expired records are already ignored (and taken over) by `begin_idempotent`; sweeping only
//! keeps the table from growing without bound.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::store::{Store, StoreResult, IDEMPOTENCY_WINDOW};

/// Rows deleted per statement; small enough to keep each delete short.
const BATCH: u32 = 1_000;

/// Pause between sweeps when nothing was left to delete.
const IDLE_INTERVAL: Duration = Duration::from_secs(600);

/// Pause between batches while a backlog remains, to leave room for request traffic.
const BUSY_INTERVAL: Duration = Duration::from_millis(100);

/// Deletes one batch of expired records.
pub async fn run_once(store: &dyn Store) -> StoreResult<Outcome> {
    let deleted = store
        .purge_idempotency_keys(Utc::now() - IDEMPOTENCY_WINDOW, BATCH)
        .await?;
    Ok(if deleted == 0 {
        Outcome::Idle
    } else {
        Outcome::Worked(deleted)
    })
}

/// Sweeps until `shutdown` is cancelled.
pub async fn run(store: Arc<dyn Store>, shutdown: CancellationToken) {
    loop {
        let pause = match run_once(store.as_ref()).await {
            Ok(Outcome::Worked(n)) => {
                tracing::debug!(deleted = n, "expired idempotency keys deleted");
                BUSY_INTERVAL
            }
            Ok(Outcome::Idle) => IDLE_INTERVAL,
            Err(err) => {
                tracing::warn!(error = %err, retryable = err.is_retryable(), "idempotency sweep failed");
                IDLE_INTERVAL
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
