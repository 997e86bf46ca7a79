//! The webhook dispatcher: captures events from the state tables into the outbox, then sends
//! due attempts, each under a lease in the database so one replica sends each, and settles
//! them along the retry ladder.
//!
//! Capture reads each source (see [`EventSource`]) by its cursor up to `capture_lag_ms` ago,
//! so rows whose transaction commits late are still seen. Sends run concurrently within a
//! batch; a crash between send and settle re-sends after the lease expires (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::crypto::MasterKey;
use crate::store::{ClaimedWebhook, EventSource, Store, StoreResult, WebhookSettle};
use crate::webhooks::guard::AllowList;
use crate::webhooks::send::{self, Message, SendError};
use crate::webhooks::{sign, WebhookConfig};

/// Source rows read per capture statement.
const CAPTURE_BATCH: u32 = 200;

/// Attempts leased per dispatch step (sent concurrently).
const SEND_BATCH: u32 = 16;

/// Lease slack beyond the send's own bound (twice the timeout: the URL's resolution, then the
/// request) before another replica (or this one, restarted) may take an attempt over.
const LEASE_SLACK: Duration = Duration::from_secs(5);

/// Rows deleted per purge statement.
const PURGE_BATCH: u32 = 1_000;

/// How often a dispatcher purges the delivery log past its retention.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Pause after a failed step.
const ERROR_PAUSE: Duration = Duration::from_secs(2);

/// What the dispatcher needs.
pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub kek: Arc<MasterKey>,
    pub config: Arc<WebhookConfig>,
    allow: AllowList,
    /// When the delivery log was last purged (`None`: not yet in this process).
    purged_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, kek: Arc<MasterKey>, config: Arc<WebhookConfig>) -> Self {
        let allow = AllowList::parse(&config.allow_private).unwrap_or_default();
        Self {
            store,
            kek,
            config,
            allow,
            purged_at: std::sync::Mutex::new(None),
        }
    }

    /// Captures new events, then sends one batch of due attempts.
    #[tracing::instrument(skip_all, name = "webhooks.run_once")]
    pub async fn run_once(&self) -> StoreResult<Outcome> {
        self.purge().await?;
        let captured = self.capture().await?;
        let sent = self.dispatch().await?;
        Ok(match captured + sent {
            0 => Outcome::Idle,
            n => Outcome::Worked(n),
        })
    }

    /// Deletes settled deliveries and events past the retention, every [`PURGE_INTERVAL`].
    async fn purge(&self) -> StoreResult<()> {
        {
            let mut last = self.purged_at.lock().expect("not poisoned");
            if last.is_some_and(|at| at.elapsed() < PURGE_INTERVAL) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let before = Utc::now() - chrono::Duration::days(i64::from(self.config.retention_days));
        while self
            .store
            .purge_webhook_history(before, PURGE_BATCH)
            .await?
            > 0
        {}
        Ok(())
    }

    /// Moves every source's new rows into the outbox; returns the rows read.
    async fn capture(&self) -> StoreResult<u64> {
        let lag = chrono::Duration::milliseconds(self.config.capture_lag_ms as i64);
        let mut read = 0;
        for source in EventSource::ALL {
            loop {
                let until = Utc::now() - lag;
                let events = self
                    .store
                    .read_webhook_source(source, until, CAPTURE_BATCH)
                    .await?;
                if events.is_empty() {
                    break;
                }
                let stored = self
                    .store
                    .record_webhook_events(source, &events, Utc::now())
                    .await?;
                if stored > 0 {
                    tracing::debug!(source = source.name(), stored, "webhook events captured");
                }
                read += events.len() as u64;
                if events.len() < CAPTURE_BATCH as usize {
                    break;
                }
            }
        }
        Ok(read)
    }

    /// Leases due attempts, sends them concurrently and settles each; returns how many.
    async fn dispatch(&self) -> StoreResult<u64> {
        let owner = format!("whd_{}", ulid::Ulid::new());
        let now = Utc::now();
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let lease = timeout * 2 + LEASE_SLACK;
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let claimed = self
            .store
            .claim_webhooks(&owner, now, lease_until, SEND_BATCH)
            .await?;
        let n = claimed.len() as u64;
        let outcomes = join_all(claimed.iter().map(|c| self.send(c, timeout))).await;
        for (attempt, result) in claimed.iter().zip(outcomes) {
            let settle = self.settle_for(attempt, result);
            let label = match &settle {
                WebhookSettle::Delivered { .. } => "delivered",
                WebhookSettle::Retry { .. } => "retry",
                WebhookSettle::Failed { .. } => "failed",
            };
            metrics::counter!("herald_webhook_deliveries_total", "outcome" => label).increment(1);
            let kept = self
                .store
                .settle_webhook(attempt.attempt_id, &owner, &settle, Utc::now())
                .await?;
            if !kept {
                tracing::warn!(
                    webhook.attempt = attempt.attempt_id,
                    "webhook lease lost before settling"
                );
            }
        }
        Ok(n)
    }

    async fn send(&self, attempt: &ClaimedWebhook, timeout: Duration) -> Result<u16, SendError> {
        let keys = self.keys(attempt).map_err(SendError::Transport)?;
        let message = Message {
            id: &attempt.event_id,
            body: &attempt.payload,
            keys: &keys,
        };
        // Resolution and request each get the timeout; the lease covers both.
        tokio::time::timeout(
            timeout * 2,
            send::post(&attempt.url, &message, &self.allow, timeout),
        )
        .await
        .unwrap_or_else(|_| Err(SendError::Transport("timed out".into())))
    }

    /// The endpoint's signing keys, current first, then the previous one while it overlaps.
    /// Only the current one is required: a previous secret that no longer opens (say, copied
    /// aside under a master key rotated away since) is left out of the signature.
    fn keys(&self, attempt: &ClaimedWebhook) -> Result<Vec<Vec<u8>>, String> {
        let open = |blob: &[u8]| {
            let secret = self.kek.open(blob, &attempt.endpoint_id).ok()?;
            sign::key_of(std::str::from_utf8(&secret).ok()?)
        };
        let current = open(&attempt.secret_sealed)
            .ok_or_else(|| "signing secret could not be opened".to_owned())?;
        let mut keys = vec![current];
        if let Some(previous) = attempt.previous_sealed.as_deref() {
            match open(previous) {
                Some(key) => keys.push(key),
                None => tracing::warn!(
                    webhook.id = %attempt.endpoint_id,
                    "previous webhook secret could not be opened; signing with the current one"
                ),
            }
        }
        Ok(keys)
    }

    /// How an attempt settles: delivered, the next rung of the ladder, or given up.
    fn settle_for(
        &self,
        attempt: &ClaimedWebhook,
        result: Result<u16, SendError>,
    ) -> WebhookSettle {
        let err = match result {
            Ok(code) => {
                return WebhookSettle::Delivered {
                    status_code: i32::from(code),
                }
            }
            Err(err) => err,
        };
        let status_code = err.status_code().map(i32::from);
        let rung = usize::try_from(attempt.attempts).unwrap_or(usize::MAX);
        match self.config.retry_schedule_secs.get(rung) {
            Some(&delay) if err.is_retryable() => WebhookSettle::Retry {
                at: Utc::now() + chrono::Duration::seconds(delay as i64),
                status_code,
                error: err.to_string(),
            },
            _ => WebhookSettle::Failed {
                status_code,
                error: err.to_string(),
            },
        }
    }
}

/// Runs the dispatcher until `shutdown` is cancelled.
pub async fn run(dispatcher: Dispatcher, shutdown: CancellationToken) {
    let idle = Duration::from_millis(dispatcher.config.poll_interval_ms);
    loop {
        let pause = match dispatcher.run_once().await {
            Ok(Outcome::Worked(_)) => Duration::ZERO,
            Ok(Outcome::Idle) => idle,
            Err(err) => {
                tracing::warn!(error = %err, retryable = err.is_retryable(), "webhook dispatch failed");
                ERROR_PAUSE
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
