//! The inbound worker step for one channel: join new DMs, read new messages, answer commands.
//!
//! Restart safety has two layers. The XMTP client keeps its welcome and group cursors in its
//! own store (the channel's state in herald's database once the pipeline wires it), so a
//! restarted client does not fetch old messages again; and every handled message is claimed in
//! `inbound_messages` first, so even a replayed message is never applied or answered twice.
//! The claim comes before the reply: a crash between the two loses one reply (at most once),
//! which beats answering twice.
//!
//! The sender's wallet is read from its inbox's verified identity log (`inbox_states`), never
//! from the message: an inbox with several wallets acts as its recovery (creating) address.

use std::collections::BTreeMap;

use xmtp_client::{Client, ClientError, InboxState, ReceivedMessage};

use super::handler::{chat_evidence, handle_incoming, Incoming};
use super::limit::ChatLimiter;
use crate::domain::{Address, ChannelId};
use crate::store::{Store, StoreError};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The XMTP client failed; retryable when its cause is (e.g. the node is unreachable).
    #[error("xmtp client: {0}")]
    Client(#[from] ClientError),
    /// The database failed; retryable when transient.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl InboundError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Client(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
        }
    }
}

impl From<InboundError> for crate::xmtp::channel::ChannelXmtpError {
    fn from(e: InboundError) -> Self {
        match e {
            InboundError::Client(e) => Self::Client(e),
            InboundError::Store(e) => Self::Store(e),
        }
    }
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InboundOutcome {
    /// DMs newly joined from welcomes.
    pub joined: usize,
    /// Messages handled (each answered).
    pub handled: usize,
    /// Commands dropped unanswered because their sender was over its limit.
    pub limited: usize,
}

/// Runs one pass for `channel` with its XMTP `client`, reading every known peer's DMs, with no
/// per-sender limit. `welcome_default` is used when the channel has no welcome text of its own.
pub async fn run_once(
    store: &dyn Store,
    channel: &ChannelId,
    client: &Client,
    welcome_default: &str,
) -> Result<InboundOutcome, InboundError> {
    let unlimited = ChatLimiter::unlimited();
    run_pass(store, channel, client, welcome_default, None, &unlimited).await
}

/// [`run_once`] reading only the DMs of `only` (when given) and of peers that sent a new
/// welcome (what a stream-triggered pass needs), each sender's commands under `limits`.
pub async fn run_pass(
    store: &dyn Store,
    channel: &ChannelId,
    client: &Client,
    welcome_default: &str,
    only: Option<&[String]>,
    limits: &ChatLimiter,
) -> Result<InboundOutcome, InboundError> {
    let mut outcome = InboundOutcome::default();
    let mut peers: BTreeMap<String, (Address, bool)> = store
        .inbound_peers(channel)
        .await?
        .into_iter()
        .map(|(inbox, address)| (inbox, (address, false)))
        .collect();
    let joined = client.sync_welcomes().await?;
    outcome.joined = joined.len();
    let mut to_read: std::collections::BTreeSet<String> = match only {
        Some(only) => only.iter().cloned().collect(),
        None => peers.keys().cloned().collect(),
    };
    to_read.extend(joined.iter().cloned());
    let unknown: Vec<String> = joined
        .into_iter()
        .filter(|inbox| !peers.contains_key(inbox) && inbox != client.inbox_id())
        .collect();
    if !unknown.is_empty() {
        let states = client.inbox_states(&unknown).await?;
        for inbox in unknown {
            let Some(address) = states.get(&inbox).and_then(wallet_of) else {
                tracing::warn!(xmtp.inbox = %inbox, "peer inbox has no verified wallet; ignored");
                continue;
            };
            let first = store.add_inbound_peer(channel, &inbox, &address).await?;
            peers.insert(inbox, (address, first));
        }
    }
    let welcome = match store.welcome_text(channel).await? {
        Some(text) => text,
        None => welcome_default.to_owned(),
    };
    to_read.retain(|inbox| peers.contains_key(inbox));
    let mut inbox_messages = read_all(client, to_read.into_iter().collect()).await?;
    for (inbox, (address, mut first_contact)) in peers {
        let Some(messages) = inbox_messages.remove(&inbox) else {
            continue;
        };
        for message in messages {
            // Only the peer's own text messages; our replies and other content are not commands.
            let (Some(text), true) = (message.text.as_deref(), message.sender_inbox_id == inbox)
            else {
                continue;
            };
            // The claim key stays (inbox, node sequence), as before the message id was known,
            // so messages claimed by an older version are not handled again.
            let message_id = format!("{inbox}:{}", message.node_id);
            if !store.claim_inbound_message(channel, &message_id).await? {
                continue;
            }
            // Claimed first, so a dropped command is not handled by a later pass either.
            if !limits.allow(channel.as_str(), &inbox) {
                outcome.limited += 1;
                continue;
            }
            let evidence = chat_evidence(message.id.as_ref(), &inbox, &address, message.node_id);
            let incoming = Incoming {
                channel,
                sender: &address,
                evidence: &evidence,
                text,
                first_contact,
            };
            first_contact = false;
            if let Some(reply) = handle_incoming(store, &incoming, &welcome).await? {
                client
                    .send_text(&inbox, &reply, &format!("reply:{message_id}"))
                    .await?;
            }
            outcome.handled += 1;
        }
    }
    Ok(outcome)
}

/// New messages of every peer's DMs, fetched together. If that fails for a reason a retry
/// will not fix (one broken DM), peers are read one by one so the others still get answered;
/// transient failures (node unreachable) end the pass and are retried.
async fn read_all(
    client: &Client,
    peers: Vec<String>,
) -> Result<BTreeMap<String, Vec<ReceivedMessage>>, InboundError> {
    match client.sync_dms(&peers).await {
        Ok(all) => return Ok(all.into_iter().collect()),
        Err(error) if error.is_retryable() => return Err(error.into()),
        Err(error) => tracing::warn!(%error, "batched DM read failed; reading DMs one by one"),
    }
    let mut all = BTreeMap::new();
    for inbox in peers {
        match client.sync_dm(&inbox).await {
            Ok(messages) => {
                all.insert(inbox, messages);
            }
            Err(error) if !error.is_retryable() => {
                tracing::warn!(xmtp.inbox = %inbox, %error, "skipping a DM that cannot be read");
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(all)
}

/// Makes the step read DMs that herald opened (announcements to subscribers who never wrote
/// first): resolves `addresses` to inbox ids on the network and records them as known peers, so
/// a STOP sent in reply to an announcement is seen. The delivery pipeline calls this for the
/// recipients it resolved; known peers never get the welcome text. Returns how many were new.
pub async fn watch_recipients(
    store: &dyn Store,
    channel: &ChannelId,
    client: &Client,
    addresses: &[Address],
) -> Result<usize, InboundError> {
    let wanted: Vec<String> = addresses.iter().map(|a| a.as_str().to_owned()).collect();
    let peers: Vec<(String, Address)> = client
        .resolve_inbox_ids(&wanted)
        .await?
        .into_iter()
        .filter_map(|(address, inbox)| Some((inbox?, Address::parse(&address).ok()?)))
        .collect();
    Ok(store.add_inbound_peers(channel, &peers).await? as usize)
}

/// The wallet an inbox acts as: its only address, else its recovery address if associated.
fn wallet_of(inbox: &InboxState) -> Option<Address> {
    let state = &inbox.state;
    let addresses = state.addresses();
    let chosen = if addresses.len() == 1 {
        addresses.into_iter().next()
    } else {
        addresses.into_iter().find(|a| *a == state.recovery_address)
    }?;
    Address::parse(&chosen).ok()
}
