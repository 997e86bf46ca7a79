//! The inbound watcher: follows every channel's welcome topic and DM groups with the node's
//! server streams, and marks a channel's inbox due (plus a wake-up) when something arrives.
//!
//! It holds no MLS state and decrypts nothing: the streams only say *that* a topic received
//! a message. The delivery worker holding the channel's sender lease then reads the inbox with
//! its own client, so a command DM'd to a channel is answered within about a second while each
//! channel keeps exactly one MLS writer. The mark lives in the database, so whichever replica
//! takes the lease answers. If a stream breaks, the periodic fallback pass still reads every
//! inbox (`xmtp.inbound_poll_secs`); the watcher reconnects from the ids it last saw.
//!
//! Our own sends (announcements, replies) show up on the group streams too. The channel's client
//! tags them (`sender_hmac` = HMAC under a key derived from the master key for that channel,
//! see [`crate::xmtp::channel::sender_tag_key`]), so they are recognised without decrypting and
//! mark nothing: a broadcast to 10,000 DMs does not make 10,000 DMs due for reading.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;
use xmtp_client::{GroupArrival, Subscriptions};

use crate::crypto::MasterKey;
use crate::domain::ChannelId;
use crate::store::{InboundTopics, Store};
use crate::xmtp::channel::sender_tag_key;

/// How often the topic list (channels, DM groups) is re-read from the database.
const REFRESH: Duration = Duration::from_secs(2);
/// Arrivals are gathered this long, then marked in one go.
const FLUSH: Duration = Duration::from_millis(100);
/// Pause before reconnecting after a stream or database error.
const RETRY: Duration = Duration::from_secs(1);

/// One process's watcher (started by `delivery::spawn` when inbound chat is on).
pub struct Watcher {
    store: Arc<dyn Store>,
    grpc: Arc<dyn Subscriptions>,
    kek: Arc<MasterKey>,
    /// Sender tag keys of the channels seen so far.
    tag_keys: HashMap<String, [u8; 32]>,
    /// Last id seen per topic: reconnects resume there instead of replaying.
    seen: HashMap<Vec<u8>, u64>,
    /// Wakes the app's delivery workers, which read the due inboxes.
    wake: crate::workers::Wake,
}

/// Topic bytes → owning channel, split by stream.
#[derive(Default)]
struct Owners {
    welcomes: HashMap<Vec<u8>, ChannelId>,
    groups: HashMap<Vec<u8>, ChannelId>,
}

impl Owners {
    fn from(topics: &InboundTopics) -> Self {
        let decode = |rows: &[(ChannelId, String)]| {
            rows.iter()
                .filter_map(|(c, hex_id)| Some((hex::decode(hex_id).ok()?, c.clone())))
                .collect()
        };
        Owners {
            welcomes: decode(&topics.welcomes),
            groups: decode(&topics.groups),
        }
    }
}

impl Watcher {
    pub fn new(
        store: Arc<dyn Store>,
        grpc: Arc<dyn Subscriptions>,
        kek: Arc<MasterKey>,
        wake: crate::workers::Wake,
    ) -> Self {
        Self {
            store,
            grpc,
            kek,
            tag_keys: HashMap::new(),
            seen: HashMap::new(),
            wake,
        }
    }

    /// Whether the channel itself published this group message (its sender tag matches).
    fn is_own(&mut self, channel: &ChannelId, arrival: &GroupArrival) -> bool {
        let kek = &self.kek;
        let key = self
            .tag_keys
            .entry(channel.as_str().to_owned())
            .or_insert_with(|| sender_tag_key(kek, channel));
        xmtp_client::sender_tag::is_own(key, &arrival.data, &arrival.sender_hmac)
    }

    /// Runs until `shutdown` fires: (re)subscribes whenever the topic list changes.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let topics = match self.store.inbound_topics().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(error = %e, "inbound watcher cannot read topics");
                    if sleep_or_cancel(RETRY, &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let owners = Owners::from(&topics);
            let store = self.store.clone();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changed(&*store, &topics) => {}
                r = self.follow(&owners) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "inbound stream ended; reconnecting");
                    }
                    if sleep_or_cancel(RETRY, &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    fn filters(&self, topics: &HashMap<Vec<u8>, ChannelId>) -> Vec<(Vec<u8>, u64)> {
        topics
            .keys()
            .map(|t| (t.clone(), self.seen.get(t).copied().unwrap_or(0)))
            .collect()
    }

    /// Streams both topic kinds and marks channels as arrivals come in.
    async fn follow(&mut self, owners: &Owners) -> anyhow::Result<()> {
        let mut welcomes = match owners.welcomes.is_empty() {
            true => futures_util::stream::pending().boxed(),
            false => {
                let filters = self.filters(&owners.welcomes);
                self.grpc.subscribe_welcomes(filters).await?
            }
        };
        let mut groups = match owners.groups.is_empty() {
            true => futures_util::stream::pending().boxed(),
            false => {
                let filters = self.filters(&owners.groups);
                self.grpc.subscribe_groups(filters).await?
            }
        };
        let mut due = Arrivals::default();
        let mut flush = tokio::time::interval(FLUSH);
        loop {
            let (topic, id, owner) = tokio::select! {
                m = welcomes.next() => {
                    let (topic, id) = m.ok_or_else(closed)??;
                    let owner = owners.welcomes.get(&topic).map(|c| (c.clone(), None));
                    (topic, id, owner)
                }
                m = groups.next() => {
                    let a = m.ok_or_else(closed)??;
                    let owner = match owners.groups.get(&a.group_id) {
                        Some(c) if !self.is_own(c, &a) => Some((c.clone(), Some(hex::encode(&a.group_id)))),
                        _ => None,
                    };
                    (a.group_id, a.id, owner)
                }
                _ = flush.tick() => {
                    self.mark(&mut due).await?;
                    continue;
                }
            };
            if let Some((channel, group)) = owner {
                due.note(&channel, group);
            }
            due.seen.push((topic, id));
        }
    }

    /// Marks the gathered DMs and channels due and wakes this process's workers. Every
    /// replica with workers runs its own watcher, so no cross-process wake-up is needed.
    /// DMs first: a pass that sees the channel mark must also see which DMs to read.
    /// Only then are the arrivals' ids remembered: after a failed flush, the reconnect
    /// replays them.
    async fn mark(&mut self, due: &mut Arrivals) -> anyhow::Result<()> {
        if due.channels.is_empty() && due.seen.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        for (channel, groups) in &due.groups {
            let groups: Vec<String> = groups.iter().cloned().collect();
            self.store
                .mark_inbound_groups(channel, &groups, now)
                .await?;
        }
        if !due.channels.is_empty() {
            self.store.mark_inbound(&due.channels, now).await?;
            self.wake.inbound();
        }
        for (topic, id) in due.seen.drain(..) {
            let mark = self.seen.entry(topic).or_insert(0);
            *mark = (*mark).max(id);
        }
        *due = Arrivals::default();
        Ok(())
    }
}

/// Arrivals gathered between two flushes.
#[derive(Default)]
struct Arrivals {
    channels: Vec<ChannelId>,
    /// Per channel, the DM groups (hex) that received something.
    groups: Vec<(ChannelId, HashSet<String>)>,
    /// (topic, message id) of every arrival, remembered once marked.
    seen: Vec<(Vec<u8>, u64)>,
}

impl Arrivals {
    fn note(&mut self, channel: &ChannelId, group: Option<String>) {
        if !self.channels.contains(channel) {
            self.channels.push(channel.clone());
        }
        let Some(group) = group else { return };
        let at = match self.groups.iter().position(|(c, _)| c == channel) {
            Some(at) => at,
            None => {
                self.groups.push((channel.clone(), HashSet::new()));
                self.groups.len() - 1
            }
        };
        self.groups[at].1.insert(group);
    }
}

fn closed() -> anyhow::Error {
    anyhow::anyhow!("stream closed by the node")
}

/// Returns once the topic list differs from `current` (polled every [`REFRESH`]).
async fn changed(store: &dyn Store, current: &InboundTopics) {
    loop {
        tokio::time::sleep(REFRESH).await;
        match store.inbound_topics().await {
            Ok(now) if &now != current => return,
            _ => {}
        }
    }
}

/// Sleeps; true if shutdown fired first.
async fn sleep_or_cancel(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(pause) => false,
    }
}
