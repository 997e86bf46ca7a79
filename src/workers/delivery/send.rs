//! Sending a prepared batch: sealed (DMs created, encrypted, ratchets durable), then published
//! and settled; the outcome of each delivery, retries and rate-limit pauses.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use xmtp_client::{Client, ClientError, SealedBatch, SendOptions, TransportError};

use super::governor::Governor;
use super::prepare::Prepared;
use super::Worker;
use crate::store::pipeline::{ClaimedDelivery, SenderLease, SettleOutcome};
use crate::store::AnnouncementState;
use crate::xmtp::channel::ChannelXmtpError;
use crate::xmtp::state::StateError;

/// Back-off before retry n (1-based) of a failed delivery; the last step repeats.
const RETRY_LADDER: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
];
/// Pause after the node answered RESOURCE_EXHAUSTED without saying for how long.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(2);
/// Writes beyond the message that creating a DM costs (commit + welcome).
const NEW_DM_WRITES: usize = 2;

/// A batch encrypted with its ratchets durable, not published yet ([`Round::seal`]).
#[derive(Default)]
pub struct Sealed {
    /// Outcomes already known (skips, per-item errors).
    results: Vec<(i64, SettleOutcome)>,
    /// Deliveries whose message is in `batch`.
    sent: Vec<ClaimedDelivery>,
    batch: Option<SealedBatch>,
    /// Stop draining after this batch (rate limited, or a retryable failure of the whole batch).
    stop: bool,
    /// The lease was lost: nothing may be written under it any more.
    lease_lost: bool,
}

impl Sealed {
    /// Whether the drain must end after this batch.
    pub fn ends_drain(&self) -> bool {
        self.stop || self.lease_lost
    }
}

pub enum RoundEnd {
    /// Batch settled; keep draining.
    Continue(u64),
    /// Stop draining this channel for now (rate limited or lease lost).
    Paused(u64),
}

pub struct Round<'a> {
    pub worker: &'a Worker,
    pub client: &'a Client,
    pub lease: &'a SenderLease,
    pub governor: Option<&'a Governor>,
}

/// The PlaintextEnvelope idempotency key: the same for every attempt of one delivery, so a
/// resend after a crash shows once in receiving apps.
pub fn idempotency_key(announcement_id: &str, address: &str) -> String {
    format!("herald:{announcement_id}:{address}")
}

/// The node's "retry in N ms" hint on RESOURCE_EXHAUSTED, if this error is one.
fn rate_limited(e: &ClientError) -> Option<Duration> {
    let ClientError::Transport(TransportError::Status(s)) = e else {
        return None;
    };
    if s.code() != tonic::Code::ResourceExhausted {
        return None;
    }
    let hint = s
        .message()
        .split("retry in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    Some(
        hint.unwrap_or(RATE_LIMIT_PAUSE)
            .max(Duration::from_millis(100)),
    )
}

fn lease_lost(e: &ClientError) -> bool {
    matches!(e, ClientError::Store(xmtp_client::storage::StoreError::Backend(b))
        if matches!(b.downcast_ref::<StateError>(), Some(StateError::LeaseLost)))
}

impl Round<'_> {
    fn outcome_for(&self, d: &ClaimedDelivery, e: &ClientError) -> SettleOutcome {
        let now = Utc::now();
        if let Some(wait) = rate_limited(e) {
            return SettleOutcome::Retry {
                at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                reason: "rate_limited".into(),
                failed_attempt: false,
            };
        }
        let attempts = d.attempts + 1;
        if e.is_retryable() && attempts < self.worker.xmtp.config.max_attempts {
            let step = RETRY_LADDER[(attempts as usize - 1).min(RETRY_LADDER.len() - 1)];
            SettleOutcome::Retry {
                at: now + chrono::Duration::from_std(step).unwrap_or_default(),
                reason: e.to_string(),
                failed_attempt: true,
            }
        } else {
            SettleOutcome::Failed(e.to_string())
        }
    }

    /// Creates missing DMs, encrypts and publishes a prepared batch, and settles it.
    pub async fn deliver(&self, prepared: Prepared) -> Result<RoundEnd, ChannelXmtpError> {
        let sealed = self.seal(prepared).await?;
        self.publish(sealed).await
    }

    /// The first half of [`Round::deliver`]: DMs created, messages encrypted, ratchets
    /// durable; nothing published yet. The next batch can be sealed while this one is
    /// published.
    pub async fn seal(&self, prepared: Prepared) -> Result<Sealed, ChannelXmtpError> {
        let Prepared {
            mut results,
            sendable,
            items,
            unresolved,
        } = prepared;
        let mut sealed = Sealed::default();
        // Tokens reserved for this batch at claim: one per claimed delivery.
        let reserved = (results.len() + sendable.len()) as i64;
        if let Some(e) = unresolved {
            sealed.stop = self.note_rate_limit(&e).await || e.is_retryable();
            for d in &sendable {
                results.push((d.id, self.outcome_for(d, &e)));
            }
            sealed.results = results;
            self.settle_budget(reserved, 0).await?;
            return Ok(sealed);
        }
        if let Some(g) = self.governor {
            let mut new_dms = HashSet::new();
            for i in &items {
                if self.client.dm_group_id(&i.peer_inbox_id).await.is_none() {
                    new_dms.insert(i.peer_inbox_id.clone());
                }
            }
            let cost = (items.len() + NEW_DM_WRITES * new_dms.len()) as i64;
            g.adjust(reserved - cost).await?;
        }
        if !items.is_empty() {
            match self.client.seal_batch(items, SendOptions::default()).await {
                Ok((per_item, batch)) => {
                    for (d, r) in sendable.into_iter().zip(per_item) {
                        match r {
                            Ok(()) => sealed.sent.push(d),
                            Err(e) => results.push((d.id, self.outcome_for(&d, &e))),
                        }
                    }
                    sealed.batch = Some(batch);
                }
                Err(e) if lease_lost(&e) => {
                    sealed.lease_lost = true;
                    return Ok(sealed);
                }
                Err(e) => {
                    sealed.stop = self.note_rate_limit(&e).await;
                    for d in &sendable {
                        results.push((d.id, self.outcome_for(d, &e)));
                    }
                }
            }
        }
        sealed.results = results;
        Ok(sealed)
    }

    /// The second half of [`Round::deliver`]: publishes a sealed batch and settles it.
    pub async fn publish(&self, sealed: Sealed) -> Result<RoundEnd, ChannelXmtpError> {
        let t0 = std::time::Instant::now();
        let Sealed {
            mut results,
            sent,
            batch,
            mut stop,
            lease_lost,
        } = sealed;
        if lease_lost {
            return Ok(RoundEnd::Paused(0));
        }
        let still = batch.is_none() || self.still_claimed(&sent).await?;
        let t_check = t0.elapsed();
        if !still {
            // Cancelled since the claim: publish none of it. The rest of the batch is pending
            // again at once (its ciphertexts are dropped, as in `release_sealed`); cancelled
            // rows are left as they are.
            results.extend(sent.iter().map(|d| (d.id, SettleOutcome::Release)));
            let n = self.settle(&results).await?;
            return Ok(RoundEnd::Continue(n));
        }
        if let Some(batch) = batch {
            match self.client.publish_sealed(batch).await {
                Ok(()) => results.extend(sent.iter().map(|d| (d.id, SettleOutcome::Delivered))),
                Err(e) => {
                    stop |= self.note_rate_limit(&e).await;
                    for d in &sent {
                        results.push((d.id, self.outcome_for(d, &e)));
                    }
                }
            }
        }
        let t_publish = t0.elapsed();
        let n = self.settle(&results).await?;
        tracing::debug!(target: "herald::timing", n, ?t_check, ?t_publish, total = ?t0.elapsed(), "publish");
        Ok(if stop {
            RoundEnd::Paused(n)
        } else {
            RoundEnd::Continue(n)
        })
    }

    /// Whether every delivery of a sealed batch is still pending under this lease (an
    /// announcement cancelled since the claim ends its rows `skipped`).
    async fn still_claimed(&self, sent: &[ClaimedDelivery]) -> Result<bool, ChannelXmtpError> {
        let ids: Vec<i64> = sent.iter().map(|d| d.id).collect();
        let pending = self
            .worker
            .store
            .pipeline()
            .claimed_pending(self.lease, &ids)
            .await?;
        Ok(pending == ids.len() as u64)
    }

    /// Gives back a sealed batch the drain will not publish (it ended first): outcomes
    /// already known are settled, the rest is pending again at once (its ciphertexts are
    /// dropped; receivers skip the unused ratchet generations).
    pub async fn release_sealed(&self, sealed: Sealed) -> Result<(), ChannelXmtpError> {
        if sealed.lease_lost {
            return Ok(());
        }
        let mut results = sealed.results;
        results.extend(sealed.sent.iter().map(|d| (d.id, SettleOutcome::Release)));
        self.settle(&results).await?;
        Ok(())
    }

    /// Gives back a prepared batch the drain will not send (it ended first): outcomes
    /// already known are settled, the rest is pending again at once.
    pub async fn release(&self, prepared: Prepared) -> Result<(), ChannelXmtpError> {
        let mut results = prepared.results;
        results.extend(
            prepared
                .sendable
                .iter()
                .map(|d| (d.id, SettleOutcome::Release)),
        );
        self.settle(&results).await?;
        Ok(())
    }

    /// Returns what a batch reserved at claim but will not write.
    async fn settle_budget(&self, reserved: i64, cost: i64) -> Result<(), ChannelXmtpError> {
        if let Some(g) = self.governor {
            g.adjust(reserved - cost).await?;
        }
        Ok(())
    }

    async fn note_rate_limit(&self, e: &ClientError) -> bool {
        let Some(wait) = rate_limited(e) else {
            return false;
        };
        metrics::counter!("herald_xmtp_rate_limited_total").increment(1);
        tracing::info!(channel.id = %self.lease.channel, wait_ms = wait.as_millis() as u64, "XMTP node rate limit: pausing channel");
        if let Some(g) = self.governor {
            if let Err(err) = g.penalize(wait).await {
                tracing::warn!(error = %err, "could not record the network's rate limit");
            }
        }
        true
    }

    async fn settle(&self, results: &[(i64, SettleOutcome)]) -> Result<u64, ChannelXmtpError> {
        let settled = self
            .worker
            .store
            .pipeline()
            .settle(self.lease, results, Utc::now())
            .await?;
        if settled.rows > 0 {
            // The settle read its announcements' statuses before and after in its own
            // transaction (it was two reads around it, joining every settled row).
            let (before, after): (Vec<_>, Vec<_>) = settled
                .announcements
                .into_iter()
                .map(|(id, from, to)| ((id.clone(), from), (id, to)))
                .unzip();
            for id in transitions(&before, &after) {
                // Counts only for the (rare) announcement that changed state: reading them on
                // every settle cost four counts over the whole announcement per round.
                match self.worker.store.announcement_state(id).await {
                    Ok(Some(state)) => log_transition(&before, &state),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, "could not read announcement counts for the log")
                    }
                }
            }
        }
        for (_, o) in results {
            let label = match o {
                SettleOutcome::Delivered => "delivered",
                SettleOutcome::Skipped(_) => "skipped",
                SettleOutcome::Retry { .. } => "retry",
                SettleOutcome::Failed(_) => "failed",
                SettleOutcome::Release => "released",
            };
            metrics::counter!("herald_deliveries_total", "outcome" => label).increment(1);
        }
        Ok(settled.rows)
    }
}

/// The announcements whose status changed in a way [`log_transition`] reports: it started
/// sending (was `queued`) or it completed.
fn transitions<'a>(before: &[(String, String)], after: &'a [(String, String)]) -> Vec<&'a str> {
    after
        .iter()
        .filter(|(id, status)| {
            let was = before
                .iter()
                .find(|(b, _)| b == id)
                .map_or("", |(_, s)| s.as_str());
            (was == "queued" && status != "queued") || (was != "completed" && status == "completed")
        })
        .map(|(id, _)| id.as_str())
        .collect()
}

/// Logs, at info, that an announcement started sending (was `queued`) or completed with this
/// settle.
fn log_transition(before: &[(String, String)], now: &AnnouncementState) {
    let was_status = before
        .iter()
        .find(|(id, _)| *id == now.id)
        .map_or("", |(_, s)| s.as_str());
    if was_status == "queued" && now.status != "queued" {
        tracing::info!(
            announcement.id = %now.id,
            recipients = now.total,
            pending = now.pending,
            "announcement started sending"
        );
    }
    if was_status != "completed" && now.status == "completed" {
        let duration = Utc::now() - now.created_at;
        tracing::info!(
            announcement.id = %now.id,
            recipients = now.total,
            delivered = now.delivered,
            failed = now.failed,
            skipped = now.skipped,
            duration_ms = duration.num_milliseconds(),
            "announcement completed"
        );
    }
}
