//! One round of a drain: a claimed batch becomes XMTP messages and settled rows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use xmtp_client::{Client, ClientError, OutgoingText, TransportError};

use super::governor::Governor;
use super::Worker;
use crate::store::pipeline::{ClaimedDelivery, SenderLease, SettleOutcome};
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

/// Announcement texts, loaded once per drain.
#[derive(Default)]
pub struct TextCache(HashMap<String, String>);

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

    /// Sends one claimed batch and settles it.
    pub async fn send(
        &self,
        batch: Vec<ClaimedDelivery>,
        texts: &mut TextCache,
    ) -> Result<RoundEnd, ChannelXmtpError> {
        let pipeline = self.worker.store.pipeline();
        let channel = &self.lease.channel;
        let addresses: Vec<String> = batch
            .iter()
            .map(|d| d.address.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let active = pipeline.active_subscribers(channel, &addresses).await?;
        let mut results: Vec<(i64, SettleOutcome)> = Vec::with_capacity(batch.len());
        let mut rest = Vec::with_capacity(batch.len());
        for d in batch {
            if active.contains(&d.address) {
                rest.push(d);
            } else {
                results.push((d.id, SettleOutcome::Skipped("unsubscribed")));
            }
        }
        let active: Vec<String> = rest.iter().map(|d| d.address.clone()).collect();
        let inboxes = match self.client.resolve_inbox_ids(&active).await {
            Ok(m) => m,
            Err(e) => return self.settle_all_failed(results, rest, e).await,
        };
        let mut sendable = Vec::with_capacity(rest.len());
        let mut items = Vec::with_capacity(rest.len());
        for d in rest {
            match inboxes.get(&d.address).cloned().flatten() {
                Some(inbox) => {
                    let text = match texts.0.get(&d.announcement_id) {
                        Some(t) => t.clone(),
                        None => {
                            let t = pipeline
                                .announcement_text(&d.announcement_id)
                                .await?
                                .unwrap_or_default();
                            texts.0.insert(d.announcement_id.clone(), t.clone());
                            t
                        }
                    };
                    items.push(OutgoingText {
                        peer_inbox_id: inbox,
                        text,
                        idempotency_key: idempotency_key(&d.announcement_id, &d.address),
                    });
                    sendable.push(d);
                }
                None => results.push((d.id, SettleOutcome::Skipped("not_on_xmtp"))),
            }
        }
        let mut paused = false;
        if !items.is_empty() {
            if let Some(g) = self.governor {
                let mut new_dms = HashSet::new();
                for i in &items {
                    if self.client.dm_group_id(&i.peer_inbox_id).await.is_none() {
                        new_dms.insert(i.peer_inbox_id.clone());
                    }
                }
                g.spend(channel, items.len() + NEW_DM_WRITES * new_dms.len());
            }
            match self.client.send_batch(items).await {
                Ok(per_item) => {
                    for (d, r) in sendable.iter().zip(per_item) {
                        let outcome = match r {
                            Ok(()) => SettleOutcome::Delivered,
                            Err(e) => self.outcome_for(d, &e),
                        };
                        results.push((d.id, outcome));
                    }
                }
                Err(e) if lease_lost(&e) => return Ok(RoundEnd::Paused(0)),
                Err(e) => {
                    paused = self.note_rate_limit(&e);
                    for d in &sendable {
                        results.push((d.id, self.outcome_for(d, &e)));
                    }
                }
            }
        }
        let n = self.settle(&results).await?;
        Ok(if paused {
            RoundEnd::Paused(n)
        } else {
            RoundEnd::Continue(n)
        })
    }

    fn note_rate_limit(&self, e: &ClientError) -> bool {
        let Some(wait) = rate_limited(e) else {
            return false;
        };
        metrics::counter!("herald_xmtp_rate_limited_total").increment(1);
        tracing::info!(channel.id = %self.lease.channel, wait_ms = wait.as_millis() as u64, "XMTP node rate limit: pausing channel");
        if let Some(g) = self.governor {
            g.penalize(&self.lease.channel, wait);
        }
        true
    }

    async fn settle_all_failed(
        &self,
        mut results: Vec<(i64, SettleOutcome)>,
        rest: Vec<ClaimedDelivery>,
        e: ClientError,
    ) -> Result<RoundEnd, ChannelXmtpError> {
        let paused = self.note_rate_limit(&e);
        for d in &rest {
            results.push((d.id, self.outcome_for(d, &e)));
        }
        let n = self.settle(&results).await?;
        Ok(if paused || e.is_retryable() {
            RoundEnd::Paused(n)
        } else {
            RoundEnd::Continue(n)
        })
    }

    async fn settle(&self, results: &[(i64, SettleOutcome)]) -> Result<u64, ChannelXmtpError> {
        let n = self
            .worker
            .store
            .pipeline()
            .settle(self.lease, results, Utc::now())
            .await?;
        for (_, o) in results {
            let label = match o {
                SettleOutcome::Delivered => "delivered",
                SettleOutcome::Skipped(_) => "skipped",
                SettleOutcome::Retry { .. } => "retry",
                SettleOutcome::Failed(_) => "failed",
            };
            metrics::counter!("herald_deliveries_total", "outcome" => label).increment(1);
        }
        Ok(n)
    }
}
