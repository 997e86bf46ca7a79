//! What an announcement's message says on the wire: its text as plain text, or the XMTP rich
//! content its stored [`RichContent`] names, with the fallback clients without the codec show.

use xmtp_client::{Content, ReplyTarget, TransactionMetadata, TransactionReference};

use super::send::idempotency_key;
use crate::domain::RichContent;

/// An announcement's message before it is addressed: the same content for everyone, or a
/// reply to the message each recipient got for an earlier announcement (a retraction), whose
/// reference depends on the recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Same(Content),
    ReplyTo {
        /// The announcement replied to.
        original_announcement: String,
        /// Its content as it was sent (the referenced message id is derived from it).
        original: Content,
        text: String,
    },
}

impl Message {
    /// The content sent to `address`.
    pub fn for_recipient(&self, address: &str) -> Content {
        match self {
            Message::Same(content) => content.clone(),
            Message::ReplyTo {
                original_announcement,
                original,
                text,
            } => Content::Reply {
                target: ReplyTarget::Sent {
                    idempotency_key: idempotency_key(original_announcement, address),
                    content: Box::new(original.clone()),
                },
                text: text.clone(),
                fallback: text.clone(),
            },
        }
    }
}

/// The message of an announcement with `text` and `rich` content.
pub fn announcement_message(text: String, rich: Option<RichContent>) -> Message {
    match rich {
        Some(RichContent::Retraction {
            retracts,
            original_text,
            original,
        }) => Message::ReplyTo {
            original_announcement: retracts,
            original: message_content(original_text, original.map(|o| *o)),
            text,
        },
        other => Message::Same(message_content(text, other)),
    }
}

/// The XMTP content of an announcement with `text` and `rich` content.
pub fn message_content(text: String, rich: Option<RichContent>) -> Content {
    match rich {
        None => Content::Text(text),
        Some(RichContent::Markdown { fallback }) => Content::Markdown {
            fallback: fallback.unwrap_or_else(|| text.clone()),
            markdown: text,
        },
        Some(RichContent::TransactionReference {
            namespace,
            network_id,
            reference,
            metadata,
        }) => Content::TransactionReference {
            reference: TransactionReference {
                namespace,
                network_id,
                reference,
                metadata: metadata.map(|m| TransactionMetadata {
                    transaction_type: m.transaction_type,
                    currency: m.currency,
                    amount: m.amount,
                    decimals: m.decimals,
                    from_address: m.from_address,
                    to_address: m.to_address,
                }),
            },
            fallback: text,
        },
        // XMTP apps link URLs found in text; the URL goes on its own line unless the text
        // already carries it.
        Some(RichContent::Link { url }) if text.contains(&url) => Content::Text(text),
        Some(RichContent::Link { url }) => Content::Text(format!("{text}\n{url}")),
        // Retractions are addressed per recipient (`announcement_message`); a retraction of a
        // retraction is not made, so this is only reached for a nested original.
        Some(RichContent::Retraction { .. }) => Content::Text(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retraction_replies_to_each_recipients_own_message() {
        let message = announcement_message(
            "Retracted".into(),
            Some(RichContent::Retraction {
                retracts: "ann_1".into(),
                original_text: "**Swap**".into(),
                original: Some(Box::new(RichContent::Markdown { fallback: None })),
            }),
        );
        let Content::Reply {
            target:
                ReplyTarget::Sent {
                    idempotency_key,
                    content,
                },
            text,
            fallback,
        } = message.for_recipient("0xabc")
        else {
            panic!("a reply: {message:?}");
        };
        assert_eq!(idempotency_key, "herald:ann_1:0xabc");
        assert_eq!(
            *content,
            Content::Markdown {
                markdown: "**Swap**".into(),
                fallback: "**Swap**".into()
            }
        );
        assert_eq!(
            (text.as_str(), fallback.as_str()),
            ("Retracted", "Retracted")
        );
        assert_eq!(
            announcement_message("hi".into(), None).for_recipient("0xabc"),
            Content::Text("hi".into())
        );
    }

    #[test]
    fn each_kind_maps_to_its_xmtp_content() {
        assert_eq!(
            message_content("hi".into(), None),
            Content::Text("hi".into())
        );
        assert_eq!(
            message_content(
                "**hi**".into(),
                Some(RichContent::Markdown { fallback: None })
            ),
            Content::Markdown {
                markdown: "**hi**".into(),
                fallback: "**hi**".into()
            }
        );
        let link = |text: &str| {
            message_content(
                text.into(),
                Some(RichContent::Link {
                    url: "https://x.org/a".into(),
                }),
            )
        };
        assert_eq!(link("Vote"), Content::Text("Vote\nhttps://x.org/a".into()));
        assert_eq!(
            link("Vote at https://x.org/a"),
            Content::Text("Vote at https://x.org/a".into())
        );
    }
}
