//! Applies one chat command and words the reply.
//!
//! The sender's address comes from the caller, which took it from the sender inbox's verified
//! identity log; message text never names who is acting.

use crate::domain::{Address, ChannelId};
use crate::store::{
    ConsentContext, ConsentSource, PreferenceOutcome, Store, StoreResult, SubscribeOutcome,
};

use super::Command;

/// The list of commands, sent for `help`.
pub const HELP_TEXT: &str = "Commands:\n\
    SUBSCRIBE (or START) - receive this channel's announcements\n\
    STOP (or UNSUBSCRIBE) - stop receiving them\n\
    TOPICS - list topics and your choices\n\
    STOP <topic> / START <topic> - turn one topic off or on\n\
    HELP - this list";

/// One message received by a channel.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    pub channel: &'a ChannelId,
    /// Verified wallet address of the sender.
    pub sender: &'a Address,
    /// Consent evidence naming the message: see [`chat_evidence`].
    pub evidence: &'a str,
    pub text: &'a str,
    /// The sender never wrote to this channel before.
    pub first_contact: bool,
}

/// The consent evidence of a chat command: a JSON object with the XMTP message id the
/// subscriber's own app shows (`xmtp_message_id`, hex; libxmtp's SHA-256 over group id,
/// idempotency key and content), the sender's inbox id and verified wallet, and the node's
/// sequence number. Rows written before it was recorded hold `xmtp-message:<inbox>:<sequence>`.
pub fn chat_evidence(
    message_id: Option<&[u8; 32]>,
    sender_inbox: &str,
    sender_wallet: &Address,
    node_sequence: u64,
) -> String {
    serde_json::json!({
        "xmtp_message_id": message_id.map(hex::encode),
        "sender_inbox_id": sender_inbox,
        "sender_wallet": sender_wallet.as_str(),
        "node_sequence": node_sequence,
    })
    .to_string()
}

/// Applies the message's command, if any, and returns the reply to send (`None`: stay silent).
/// A first message that is not a command gets `welcome_text`.
pub async fn handle_incoming(
    store: &dyn Store,
    incoming: &Incoming<'_>,
    welcome_text: &str,
) -> StoreResult<Option<String>> {
    let context = ConsentContext {
        source: ConsentSource::Dm,
        evidence: Some(incoming.evidence.to_owned()),
    };
    let (channel, sender) = (incoming.channel, incoming.sender);
    let reply = match Command::parse(incoming.text) {
        Command::Subscribe => match store
            .subscribe_with_consent(channel, sender, &context)
            .await?
        {
            SubscribeOutcome::AlreadyActive => {
                "You're already subscribed. Reply STOP to unsubscribe.".to_owned()
            }
            SubscribeOutcome::Added | SubscribeOutcome::Reactivated => {
                "You're subscribed. Reply STOP to unsubscribe, HELP for commands.".to_owned()
            }
        },
        Command::Unsubscribe => {
            if store
                .unsubscribe_with_consent(channel, sender, &context)
                .await?
            {
                "You're unsubscribed and will get no further messages. Reply START to subscribe again."
                    .to_owned()
            } else {
                "You're not subscribed. Reply SUBSCRIBE to subscribe.".to_owned()
            }
        }
        Command::Help => HELP_TEXT.to_owned(),
        Command::Topics => topics_reply(store, channel, sender).await?,
        Command::TopicOff(topic) => {
            match store
                .set_topic_preference(channel, sender, &topic, false, &context)
                .await?
            {
                PreferenceOutcome::Set => {
                    format!("You won't get {topic} messages. Reply START {topic} to turn them back on.")
                }
                PreferenceOutcome::Required => format!(
                    "{topic} messages can't be turned off. Reply STOP to unsubscribe from the channel."
                ),
                PreferenceOutcome::UnknownTopic => unknown_topic(&topic),
            }
        }
        Command::TopicOn(topic) => {
            match store
                .set_topic_preference(channel, sender, &topic, true, &context)
                .await?
            {
                PreferenceOutcome::Set | PreferenceOutcome::Required => {
                    format!("You'll get {topic} messages.")
                }
                PreferenceOutcome::UnknownTopic => unknown_topic(&topic),
            }
        }
        Command::Unknown if incoming.first_contact => welcome_text.to_owned(),
        Command::Unknown => "Sorry, I didn't understand. Reply HELP for commands.".to_owned(),
    };
    Ok(Some(reply))
}

fn unknown_topic(topic: &str) -> String {
    format!("There is no topic named {topic}. Reply TOPICS for the list.")
}

async fn topics_reply(
    store: &dyn Store,
    channel: &ChannelId,
    sender: &Address,
) -> StoreResult<String> {
    let prefs = store.topic_preferences(channel, sender).await?;
    if prefs.is_empty() {
        return Ok("This channel has no topics.".to_owned());
    }
    let mut text = String::from("Topics:");
    for p in prefs {
        let state = match (p.topic.default_mode, p.enabled) {
            (crate::store::TopicMode::Required, _) => "always on",
            (_, true) => "on",
            (_, false) => "off",
        };
        text.push_str(&format!("\n{} - {state}", p.topic.name));
    }
    text.push_str("\nReply STOP <topic> or START <topic> to change.");
    Ok(text)
}
