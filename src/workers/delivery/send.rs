//! One round of a drain: a claimed batch becomes XMTP messages and settled rows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use xmtp_client::{Client, ClientError, OutgoingText, SealedBatch, SendOptions, TransportError};

use super::governor::Governor;
use super::Worker;
use crate::domain::Address;
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

/// What drains of a channel load once: announcement texts and topics (never edited), the
/// channel's known chat peers (only ever added), and recently resolved inbox ids. Kept with the channel's client between
/// drains, and dropped with it when another worker wrote the channel in between.
#[derive(Default)]
pub struct DrainCache {
    texts: HashMap<String, String>,
    topics: HashMap<String, Option<String>>,
    /// Inbox ids the inbound step already reads (`None`: not loaded yet).
    peers: Option<HashSet<String>>,
    /// Address → inbox id, and when it was resolved.
    inboxes: HashMap<String, (std::time::Instant, String)>,
}

/// How long a resolved inbox id is reused by later batches and announcements.
const INBOX_FRESH: std::time::Duration = std::time::Duration::from_secs(30);
/// Resolved inbox ids a kept cache holds at most.
const CACHED_INBOXES: usize = 200_000;

/// Announcements whose text and topic a kept cache holds at most.
const CACHED_ANNOUNCEMENTS: usize = 256;

impl DrainCache {
    /// Bounds the per-announcement entries (called as a drain starts).
    pub fn trim(&mut self) {
        if self.texts.len() > CACHED_ANNOUNCEMENTS || self.topics.len() > CACHED_ANNOUNCEMENTS {
            self.texts.clear();
            self.topics.clear();
        }
        if self.inboxes.len() > CACHED_INBOXES {
            let now = std::time::Instant::now();
            self.inboxes
                .retain(|_, (at, _)| now.duration_since(*at) < INBOX_FRESH);
        }
    }
}

/// A claimed batch, checked and resolved: what [`Round::deliver`] sends.
pub struct Prepared {
    /// Outcomes already known (skipped recipients).
    results: Vec<(i64, SettleOutcome)>,
    /// Deliveries to send, in the order of `items`.
    sendable: Vec<ClaimedDelivery>,
    items: Vec<OutgoingText>,
    /// Resolving inbox ids failed: every one of `sendable` settles with this error.
    unresolved: Option<ClientError>,
}

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

    /// The checks of a claimed batch that need no MLS state: unsubscribes and topic opt-outs
    /// since enqueue, inbox ids, chat peers. Runs while the previous batch is being sent.
    pub async fn prepare(
        &self,
        batch: Vec<ClaimedDelivery>,
        cache: &mut DrainCache,
    ) -> Result<Prepared, ChannelXmtpError> {
        let t0 = std::time::Instant::now();
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
        let rest = self.drop_topic_opt_outs(rest, cache, &mut results).await?;
        // Inbox ids resolved in the last INBOX_FRESH are reused (an address's inbox does not
        // change between back-to-back announcements); "not on XMTP" is always asked again.
        let now = std::time::Instant::now();
        let mut inboxes: HashMap<String, Option<String>> = HashMap::with_capacity(rest.len());
        let mut unknown = Vec::new();
        for d in &rest {
            match cache.inboxes.get(&d.address) {
                Some((at, inbox)) if now.duration_since(*at) < INBOX_FRESH => {
                    inboxes.insert(d.address.clone(), Some(inbox.clone()));
                }
                _ => unknown.push(d.address.clone()),
            }
        }
        if !unknown.is_empty() {
            match self.client.resolve_inbox_ids(&unknown).await {
                Ok(resolved) => {
                    for (address, inbox) in &resolved {
                        if let Some(inbox) = inbox {
                            cache.inboxes.insert(address.clone(), (now, inbox.clone()));
                        }
                    }
                    inboxes.extend(resolved);
                }
                Err(e) => {
                    return Ok(Prepared {
                        results,
                        sendable: rest,
                        items: Vec::new(),
                        unresolved: Some(e),
                    })
                }
            }
        }
        self.watch_recipients(&inboxes, cache).await?;
        // First contacts: verify the new peers' identities now (concurrently with the previous
        // batch's send), not inside the DM creation. Best effort: creation fetches what is missing.
        let peers: Vec<String> = inboxes.values().flatten().cloned().collect();
        if let Err(e) = self.client.prefetch_inbox_states(&peers).await {
            tracing::debug!(channel.id = %channel, error = %e, "identity prefetch failed");
        }
        let mut sendable = Vec::with_capacity(rest.len());
        let mut items = Vec::with_capacity(rest.len());
        for d in rest {
            match inboxes.get(&d.address).cloned().flatten() {
                Some(inbox) => {
                    let text = match cache.texts.get(&d.announcement_id) {
                        Some(t) => t.clone(),
                        None => {
                            let t = pipeline
                                .announcement_text(&d.announcement_id)
                                .await?
                                .unwrap_or_default();
                            cache.texts.insert(d.announcement_id.clone(), t.clone());
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
        tracing::debug!(target: "herald::timing", n = sendable.len(), took = ?t0.elapsed(), "prepare");
        Ok(Prepared {
            results,
            sendable,
            items,
            unresolved: None,
        })
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
        if let Some(e) = unresolved {
            sealed.stop = self.note_rate_limit(&e) || e.is_retryable();
            for d in &sendable {
                results.push((d.id, self.outcome_for(d, &e)));
            }
            sealed.results = results;
            return Ok(sealed);
        }
        if !items.is_empty() {
            if let Some(g) = self.governor {
                let mut new_dms = HashSet::new();
                for i in &items {
                    if self.client.dm_group_id(&i.peer_inbox_id).await.is_none() {
                        new_dms.insert(i.peer_inbox_id.clone());
                    }
                }
                g.spend(
                    &self.lease.channel,
                    items.len() + NEW_DM_WRITES * new_dms.len(),
                );
            }
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
                    sealed.stop = self.note_rate_limit(&e);
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
        if let Some(batch) = batch {
            match self.client.publish_sealed(batch).await {
                Ok(()) => results.extend(sent.iter().map(|d| (d.id, SettleOutcome::Delivered))),
                Err(e) => {
                    stop |= self.note_rate_limit(&e);
                    for d in &sent {
                        results.push((d.id, self.outcome_for(d, &e)));
                    }
                }
            }
        }
        let t_publish = t0.elapsed();
        let n = self.settle(&results).await?;
        tracing::debug!(target: "herald::timing", n, ?t_publish, total = ?t0.elapsed(), "publish");
        Ok(if stop {
            RoundEnd::Paused(n)
        } else {
            RoundEnd::Continue(n)
        })
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

    /// Send-time topic check: recipients who turned an announcement's topic off after it was
    /// enqueued end `skipped: topic_opt_out`. One query per topic in the batch.
    async fn drop_topic_opt_outs(
        &self,
        batch: Vec<ClaimedDelivery>,
        cache: &mut DrainCache,
        results: &mut Vec<(i64, SettleOutcome)>,
    ) -> Result<Vec<ClaimedDelivery>, ChannelXmtpError> {
        let store = &self.worker.store;
        let mut by_topic: HashMap<String, Vec<String>> = HashMap::new();
        for d in &batch {
            if !cache.topics.contains_key(&d.announcement_id) {
                let topic = store.announcement_topic(&d.announcement_id).await?;
                cache.topics.insert(d.announcement_id.clone(), topic);
            }
            if let Some(topic) = &cache.topics[&d.announcement_id] {
                by_topic
                    .entry(topic.clone())
                    .or_default()
                    .push(d.address.clone());
            }
        }
        if by_topic.is_empty() {
            return Ok(batch);
        }
        let mut receivers = HashMap::new();
        for (topic, addresses) in by_topic {
            let yes = store
                .topic_receivers(&self.lease.channel, &topic, &addresses)
                .await?;
            receivers.insert(topic, yes);
        }
        let mut kept = Vec::with_capacity(batch.len());
        for d in batch {
            let receives = match &cache.topics[&d.announcement_id] {
                Some(topic) => receivers[topic].contains(&d.address),
                None => true,
            };
            if receives {
                kept.push(d);
            } else {
                results.push((d.id, SettleOutcome::Skipped("topic_opt_out")));
            }
        }
        Ok(kept)
    }

    /// Records resolved recipients the inbound step does not read yet as chat peers, so a
    /// STOP sent in reply to an announcement is seen (one batched write, only new inboxes).
    async fn watch_recipients(
        &self,
        inboxes: &HashMap<String, Option<String>>,
        cache: &mut DrainCache,
    ) -> Result<(), ChannelXmtpError> {
        if !self.worker.xmtp.config.inbound {
            return Ok(());
        }
        let store = &self.worker.store;
        let channel = &self.lease.channel;
        if cache.peers.is_none() {
            let known = store.inbound_peers(channel).await?;
            cache.peers = Some(known.into_iter().map(|(inbox, _)| inbox).collect());
        }
        let known = cache.peers.get_or_insert_with(HashSet::new);
        let new: Vec<(String, Address)> = inboxes
            .iter()
            .filter_map(|(address, inbox)| {
                let inbox = inbox.as_ref().filter(|i| !known.contains(*i))?;
                Some((inbox.clone(), Address::from_trusted(address.clone())))
            })
            .collect();
        if !new.is_empty() {
            store.add_inbound_peers(channel, &new).await?;
            known.extend(new.into_iter().map(|(inbox, _)| inbox));
        }
        Ok(())
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
                SettleOutcome::Release => "released",
            };
            metrics::counter!("herald_deliveries_total", "outcome" => label).increment(1);
        }
        Ok(n)
    }
}
