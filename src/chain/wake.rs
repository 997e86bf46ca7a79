//! Optional WebSocket wake-up: a `newHeads` subscription that only shortens the watcher's
//! sleep. Polling over HTTP stays the source of truth, so a dropped or lying WebSocket can
//! delay announcements by at most one poll interval and never loses or invents one.

use alloy::providers::{Provider, RootProvider};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::redact_url;

/// Pause between reconnection attempts.
const RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Subscribes to new heads on `url` and pokes `wake` for each one, reconnecting forever until
/// `cancel` fires.
pub(crate) fn spawn(url: String, chain_id: u64, wake: Arc<Notify>, cancel: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                result = follow(&url, &wake) => {
                    // Reconnects are routine for WebSockets; polling covers the gap. Error texts
                    // may quote the URL (and its API key): replace it by the redacted form.
                    let label = redact_url(&url);
                    let reason = result.err().unwrap_or_default().replace(url.as_str(), &label);
                    tracing::debug!(chain.id = chain_id, ws = %label, "new-heads subscription ended: {reason}");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
        }
    });
}

async fn follow(url: &str, wake: &Notify) -> Result<(), String> {
    let provider: RootProvider = RootProvider::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let mut heads = provider
        .subscribe_blocks()
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let _head = heads.recv().await.map_err(|e| e.to_string())?;
        wake.notify_one();
    }
}
