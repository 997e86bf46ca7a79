//! What an announcement's message says on the wire: its text as plain text, or the XMTP rich
//! content its stored [`RichContent`] names, with the fallback clients without the codec show.

use xmtp_client::{Content, TransactionMetadata, TransactionReference};

use crate::domain::RichContent;

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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
