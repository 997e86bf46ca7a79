//! Preparing a claimed batch: the checks that need no MLS state (unsubscribes and topic
//! opt-outs since enqueue, inbox ids, chat peers, new peers' DMs built), and what drains of a
//! channel keep between batches ([`DrainCache`]).

use std::collections::{HashMap, HashSet};

use xmtp_client::{ClientError, OutgoingText};

use super::content::{announcement_message, Message};

use super::send::{idempotency_key, Round};
use crate::domain::{Address, AnnouncementId};
use crate::store::pipeline::{ClaimedDelivery, SettleOutcome};
use crate::xmtp::channel::ChannelXmtpError;

/// What drains of a channel load once: announcement messages and topics (never edited), the
/// channel's known chat peers (only ever added), and recently resolved inbox ids. Kept with the channel's client between
/// drains, and dropped with it when another worker wrote the channel in between.
#[derive(Default)]
pub struct DrainCache {
    messages: HashMap<AnnouncementId, Message>,
    topics: HashMap<AnnouncementId, Option<String>>,
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
        if self.messages.len() > CACHED_ANNOUNCEMENTS || self.topics.len() > CACHED_ANNOUNCEMENTS {
            self.messages.clear();
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
    pub(super) results: Vec<(i64, SettleOutcome)>,
    /// Deliveries to send, in the order of `items`.
    pub(super) sendable: Vec<ClaimedDelivery>,
    pub(super) items: Vec<OutgoingText>,
    /// Resolving inbox ids failed: every one of `sendable` settles with this error.
    pub(super) unresolved: Option<ClientError>,
}

impl Round<'_> {
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
        let addresses: Vec<Address> = batch
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
            match cache.inboxes.get(d.address.as_str()) {
                Some((at, inbox)) if now.duration_since(*at) < INBOX_FRESH => {
                    inboxes.insert(d.address.as_str().to_owned(), Some(inbox.clone()));
                }
                _ => unknown.push(d.address.as_str().to_owned()),
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
        // First contacts: build the new peers' DMs now (identities verified, key packages
        // validated, commits and welcomes made), concurrently with the previous batch's seal,
        // so sealing this batch only publishes them. Best effort: creation builds what is
        // missing and reports why a DM cannot be made.
        let peers: Vec<String> = inboxes.values().flatten().cloned().collect();
        if let Err(e) = self.client.prebuild_dms(&peers).await {
            tracing::debug!(channel.id = %channel, error = %e, "building DMs ahead failed");
        }
        let mut sendable = Vec::with_capacity(rest.len());
        let mut items = Vec::with_capacity(rest.len());
        for d in rest {
            match inboxes.get(d.address.as_str()).cloned().flatten() {
                Some(inbox) => {
                    if !cache.messages.contains_key(&d.announcement_id) {
                        let (text, rich) = pipeline
                            .announcement_message(&d.announcement_id)
                            .await?
                            .unwrap_or_default();
                        let message = announcement_message(text, rich);
                        cache.messages.insert(d.announcement_id.clone(), message);
                    }
                    let content =
                        cache.messages[&d.announcement_id].for_recipient(d.address.as_str());
                    items.push(OutgoingText {
                        peer_inbox_id: inbox,
                        content,
                        idempotency_key: idempotency_key(
                            d.announcement_id.as_str(),
                            d.address.as_str(),
                        ),
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
                let topic = store.announcement_topic(d.announcement_id.as_str()).await?;
                cache.topics.insert(d.announcement_id.clone(), topic);
            }
            if let Some(topic) = &cache.topics[&d.announcement_id] {
                by_topic
                    .entry(topic.clone())
                    .or_default()
                    .push(d.address.as_str().to_owned());
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
                Some(topic) => receivers[topic].contains(d.address.as_str()),
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
}
