//! Rich announcement content: how an announcement's `text` goes out when it is not plain text.
//! The store keeps it as JSON (this type's serde form); the delivery pipeline turns it into the
//! XMTP content the client encodes. Plain text has no `RichContent` at all.

use serde::{Deserialize, Serialize};

/// Longest accepted link URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// A rich content type; the announcement's `text` is its body or its fallback (see each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RichContent {
    /// `xmtp.org/markdown:1.0`: the text is markdown; clients without the codec show
    /// `fallback` (default: the text itself, which reads fine as plain text).
    Markdown { fallback: Option<String> },
    /// `xmtp.org/transactionReference:1.0`; clients without the codec show the text.
    TransactionReference {
        namespace: Option<String>,
        /// Decimal or `0x` hex.
        network_id: String,
        /// The transaction hash.
        reference: String,
        metadata: Option<TransactionMetadata>,
    },
    /// Plain text with the URL on its own last line, which XMTP apps render as a link.
    Link { url: String },
    /// A retraction (made by herald, never accepted from the API): sent as an XMTP reply
    /// (`xmtp.org/reply:1.0`) to the message each recipient got for announcement `retracts`,
    /// whose text and content are kept here to derive that message's id; the announcement's
    /// own text is the reply and its fallback.
    Retraction {
        retracts: String,
        original_text: String,
        original: Option<Box<RichContent>>,
    },
}

/// Details of a referenced transaction (XIP-21's metadata; all fields required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionMetadata {
    pub transaction_type: String,
    pub currency: String,
    /// In the currency's smallest unit.
    pub amount: f64,
    pub decimals: u32,
    pub from_address: String,
    pub to_address: String,
}

/// Why rich content was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("network_id must be a decimal number or 0x-prefixed hex")]
    NetworkId,
    #[error("reference must be a 0x-prefixed hex transaction hash of at most 130 characters")]
    Reference,
    #[error("namespace must be 1 to 32 characters of a-z, 0-9 and '-'")]
    Namespace,
    #[error("metadata fields must be non-empty, at most 100 characters, and amount finite and not negative")]
    Metadata,
    #[error("url must be an http or https URL of at most 2048 bytes without spaces")]
    Url,
    #[error("fallback must not be empty and at most 16384 bytes")]
    Fallback,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 100
}

impl RichContent {
    /// Checks the fields' shapes (the text itself is checked by `AnnouncementText`).
    pub fn check(&self) -> Result<(), ContentError> {
        match self {
            RichContent::Markdown { fallback } => match fallback {
                Some(f) if f.trim().is_empty() || f.len() > super::announcement::MAX_TEXT_BYTES => {
                    Err(ContentError::Fallback)
                }
                _ => Ok(()),
            },
            RichContent::TransactionReference {
                namespace,
                network_id,
                reference,
                metadata,
            } => {
                let numeric = match network_id.strip_prefix("0x") {
                    Some(hex) => is_hex(hex) && hex.len() <= 16,
                    None => {
                        !network_id.is_empty()
                            && network_id.len() <= 20
                            && network_id.bytes().all(|b| b.is_ascii_digit())
                    }
                };
                if !numeric {
                    return Err(ContentError::NetworkId);
                }
                if !reference
                    .strip_prefix("0x")
                    .is_some_and(|h| is_hex(h) && h.len() <= 128)
                {
                    return Err(ContentError::Reference);
                }
                if let Some(ns) = namespace {
                    let ok = !ns.is_empty()
                        && ns.len() <= 32
                        && ns
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !ok {
                        return Err(ContentError::Namespace);
                    }
                }
                if let Some(m) = metadata {
                    let ok = [
                        &m.transaction_type,
                        &m.currency,
                        &m.from_address,
                        &m.to_address,
                    ]
                    .iter()
                    .all(|f| short(f))
                        && m.amount.is_finite()
                        && m.amount >= 0.0
                        && m.decimals <= 77;
                    if !ok {
                        return Err(ContentError::Metadata);
                    }
                }
                Ok(())
            }
            // Built by herald from an announcement it already sent.
            RichContent::Retraction { .. } => Ok(()),
            RichContent::Link { url } => {
                let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
                let host = url.split("://").nth(1).unwrap_or_default();
                if !scheme_ok
                    || host.is_empty()
                    || host.starts_with('/')
                    || url.len() > MAX_URL_BYTES
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(ContentError::Url);
                }
                Ok(())
            }
        }
    }

    /// The content's name in the API and in logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RichContent::Markdown { .. } => "markdown",
            RichContent::TransactionReference { .. } => "transaction_reference",
            RichContent::Link { .. } => "link",
            RichContent::Retraction { .. } => "retraction",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(network_id: &str, reference: &str) -> RichContent {
        RichContent::TransactionReference {
            namespace: Some("eip155".into()),
            network_id: network_id.into(),
            reference: reference.into(),
            metadata: None,
        }
    }

    #[test]
    fn fields_are_checked() {
        assert!(tx("1", "0xabc").check().is_ok());
        assert!(tx("0x2105", "0xabc").check().is_ok());
        assert_eq!(tx("one", "0xabc").check(), Err(ContentError::NetworkId));
        assert_eq!(tx("1", "abc").check(), Err(ContentError::Reference));
        let link = |u: &str| RichContent::Link { url: u.into() }.check();
        assert!(link("https://example.org/vote/42").is_ok());
        assert_eq!(link("javascript:alert(1)"), Err(ContentError::Url));
        assert_eq!(link("https://a b"), Err(ContentError::Url));
        assert_eq!(link("https://"), Err(ContentError::Url));
        let md = RichContent::Markdown {
            fallback: Some(" ".into()),
        };
        assert_eq!(md.check(), Err(ContentError::Fallback));
    }

    #[test]
    fn stored_json_round_trips() {
        let c = tx("1", "0xabc");
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""type":"transaction_reference""#), "{json}");
        assert_eq!(serde_json::from_str::<RichContent>(&json).unwrap(), c);
    }
}
