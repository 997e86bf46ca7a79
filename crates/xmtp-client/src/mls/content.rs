//! Message contents inside a PlaintextEnvelope V1: `xmtp.org/text:1.0`, and the rich types
//! [`Content`] knows (`xmtp.org/markdown:1.0`, `xmtp.org/transactionReference:1.0`,
//! `xmtp.org/reply:1.0`), each of those with a `fallback` text that clients without the codec
//! show instead.
//!
//! Wire facts (from XIP-21 and the public content-type definitions): markdown is UTF-8 bytes
//! with the parameter `encoding = UTF-8`; a transaction reference is a UTF-8 JSON object
//! `{namespace?, networkId, reference, metadata?: {transactionType, currency, amount, decimals,
//! fromAddress, toAddress}}` with no parameters. A reply's content is the replying message's
//! own EncodedContent, protobuf-encoded, with the parameters `reference` (the hex id of the
//! message replied to) and `contentType` (the inner type as `authority/type:major.minor`).

use std::collections::HashMap;

use prost::Message as _;
use sha2::{Digest, Sha256};
use xmtp_proto::mls_contents::{
    plaintext_envelope, ContentTypeId, EncodedContent, PlaintextEnvelope,
};

/// The text content type id.
pub fn text_content_type() -> ContentTypeId {
    ContentTypeId {
        authority_id: "xmtp.org".into(),
        type_id: "text".into(),
        version_major: 1,
        version_minor: 0,
    }
}

fn xmtp_type(type_id: &str) -> ContentTypeId {
    ContentTypeId {
        authority_id: "xmtp.org".into(),
        type_id: type_id.into(),
        version_major: 1,
        version_minor: 0,
    }
}

/// The markdown content type id (`xmtp.org/markdown:1.0`).
pub fn markdown_content_type() -> ContentTypeId {
    xmtp_type("markdown")
}

/// The transaction reference content type id (`xmtp.org/transactionReference:1.0`).
pub fn transaction_reference_content_type() -> ContentTypeId {
    xmtp_type("transactionReference")
}

/// The reply content type id (`xmtp.org/reply:1.0`).
pub fn reply_content_type() -> ContentTypeId {
    xmtp_type("reply")
}

/// The message a reply refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyTarget {
    /// A message id as clients show it (lowercase hex).
    Id(String),
    /// A message this client sent earlier in the same DM, named by the idempotency key and
    /// content it was sent with: its id ([`message_id`]) depends on the DM's group id, so it
    /// is derived when the reply is encrypted for that DM.
    Sent {
        idempotency_key: String,
        content: Box<Content>,
    },
}

/// An on-chain transaction a message points at (XIP-21), as its JSON is laid out on the wire.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransactionReference {
    /// The network's namespace, e.g. `eip155`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The network id, decimal or `0x` hex (a JSON string).
    #[serde(rename = "networkId")]
    pub network_id: String,
    /// The transaction hash.
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TransactionMetadata>,
}

/// Optional details of a referenced transaction (all fields required when present).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransactionMetadata {
    #[serde(rename = "transactionType")]
    pub transaction_type: String,
    pub currency: String,
    /// In the currency's smallest unit (see `decimals`).
    pub amount: f64,
    pub decimals: u32,
    #[serde(rename = "fromAddress")]
    pub from_address: String,
    #[serde(rename = "toAddress")]
    pub to_address: String,
}

/// What one message says: plain text, or a rich type with the text shown without its codec.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    Markdown {
        markdown: String,
        fallback: String,
    },
    TransactionReference {
        reference: TransactionReference,
        fallback: String,
    },
    /// A text reply to an earlier message (`xmtp.org/reply:1.0`).
    Reply {
        target: ReplyTarget,
        text: String,
        fallback: String,
    },
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Content::Text(text)
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_owned())
    }
}

impl Content {
    /// The EncodedContent bytes of this content, for a DM whose group id does not matter
    /// (every content but a reply to a [`ReplyTarget::Sent`] message).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_in(&[])
    }

    /// The EncodedContent bytes of this content as sent in the DM `group_id`.
    pub fn encode_in(&self, group_id: &[u8]) -> Vec<u8> {
        match self {
            Content::Text(text) => encode_text(text),
            Content::Markdown { markdown, fallback } => EncodedContent {
                r#type: Some(markdown_content_type()),
                parameters: HashMap::from([("encoding".to_owned(), "UTF-8".to_owned())]),
                fallback: Some(fallback.clone()),
                compression: None,
                content: markdown.as_bytes().to_vec(),
            }
            .encode_to_vec(),
            Content::TransactionReference {
                reference,
                fallback,
            } => EncodedContent {
                r#type: Some(transaction_reference_content_type()),
                parameters: HashMap::new(),
                fallback: Some(fallback.clone()),
                compression: None,
                content: serde_json::to_vec(reference)
                    .expect("a transaction reference always serializes"),
            }
            .encode_to_vec(),
            Content::Reply {
                target,
                text,
                fallback,
            } => {
                let reference = match target {
                    ReplyTarget::Id(id) => id.clone(),
                    ReplyTarget::Sent {
                        idempotency_key,
                        content,
                    } => hex::encode(message_id(
                        group_id,
                        idempotency_key,
                        &content.encode_in(group_id),
                    )),
                };
                let inner = text_content_type();
                let inner_type = format!(
                    "{}/{}:{}.{}",
                    inner.authority_id, inner.type_id, inner.version_major, inner.version_minor
                );
                EncodedContent {
                    r#type: Some(reply_content_type()),
                    parameters: HashMap::from([
                        ("reference".to_owned(), reference),
                        ("contentType".to_owned(), inner_type),
                    ]),
                    fallback: Some(fallback.clone()),
                    compression: None,
                    content: encode_text(text),
                }
                .encode_to_vec()
            }
        }
    }
}

/// Encodes `text` as the EncodedContent every XMTP client renders as a text message.
pub fn encode_text(text: &str) -> Vec<u8> {
    EncodedContent {
        r#type: Some(text_content_type()),
        parameters: HashMap::from([("encoding".to_owned(), "UTF-8".to_owned())]),
        fallback: None,
        compression: None,
        content: text.as_bytes().to_vec(),
    }
    .encode_to_vec()
}

/// Wraps encoded content with the caller's idempotency key. Receivers derive the message id
/// from (group, key, content), so resending the same pair shows one message.
pub fn envelope(encoded_content: Vec<u8>, idempotency_key: &str) -> Vec<u8> {
    PlaintextEnvelope {
        content: Some(plaintext_envelope::Content::V1(plaintext_envelope::V1 {
            content: encoded_content,
            idempotency_key: idempotency_key.to_owned(),
        })),
    }
    .encode_to_vec()
}

/// A decoded application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    /// The idempotency key the sender chose.
    pub idempotency_key: String,
    /// The content type, if present.
    pub content_type: Option<ContentTypeId>,
    /// UTF-8 text for `xmtp.org/text`, otherwise `None`.
    pub text: Option<String>,
    /// The raw EncodedContent bytes.
    pub encoded_content: Vec<u8>,
}

/// Decodes a PlaintextEnvelope V1 (V2 carries device-sync traffic and is ignored).
pub fn decode_envelope(bytes: &[u8]) -> Option<DecodedMessage> {
    let env = PlaintextEnvelope::decode(bytes).ok()?;
    let plaintext_envelope::Content::V1(v1) = env.content? else {
        return None;
    };
    let encoded = EncodedContent::decode(v1.content.as_slice()).ok()?;
    let is_text = encoded
        .r#type
        .as_ref()
        .is_some_and(|t| t.authority_id == "xmtp.org" && t.type_id == "text");
    Some(DecodedMessage {
        idempotency_key: v1.idempotency_key,
        text: is_text.then(|| String::from_utf8_lossy(&encoded.content).into_owned()),
        content_type: encoded.r#type,
        encoded_content: v1.content,
    })
}

/// libxmtp's message id: SHA-256(group_id ‖ "\t" ‖ idempotency_key ‖ "\t" ‖ content).
pub fn message_id(group_id: &[u8], idempotency_key: &str, encoded_content: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(group_id);
    h.update(b"\t");
    h.update(idempotency_key.as_bytes());
    h.update(b"\t");
    h.update(encoded_content);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_matches_the_libxmtp_fixture() {
        // Fixture from libxmtp's serialized_content.json ("Hello, World!").
        let want = "0a120a08786d74702e6f7267120474657874180112110a08656e636f64696e6712055554462d38220d48656c6c6f2c20576f726c6421";
        assert_eq!(hex::encode(encode_text("Hello, World!")), want);
    }

    #[test]
    fn markdown_and_transaction_references_carry_type_body_and_fallback() {
        let md = Content::Markdown {
            markdown: "**vote** now".into(),
            fallback: "vote now".into(),
        }
        .encode();
        let md = EncodedContent::decode(md.as_slice()).unwrap();
        assert_eq!(md.r#type, Some(markdown_content_type()));
        assert_eq!(md.content, b"**vote** now");
        assert_eq!(md.fallback.as_deref(), Some("vote now"));
        assert_eq!(md.parameters["encoding"], "UTF-8");

        let tx = Content::TransactionReference {
            reference: TransactionReference {
                namespace: Some("eip155".into()),
                network_id: "1".into(),
                reference: "0xabc".into(),
                metadata: None,
            },
            fallback: "sent".into(),
        }
        .encode();
        let tx = EncodedContent::decode(tx.as_slice()).unwrap();
        assert_eq!(tx.r#type.unwrap().type_id, "transactionReference");
        let body: serde_json::Value = serde_json::from_slice(&tx.content).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"namespace": "eip155", "networkId": "1", "reference": "0xabc"})
        );
        assert_eq!(tx.fallback.as_deref(), Some("sent"));
        assert!(tx.parameters.is_empty());
    }

    #[test]
    fn a_reply_names_the_sent_message_by_its_id_in_that_dm() {
        let original = Content::Text("Swap 5 ETH".into());
        let reply = Content::Reply {
            target: ReplyTarget::Sent {
                idempotency_key: "ann_1:0xabc".into(),
                content: Box::new(original.clone()),
            },
            text: "Retracted".into(),
            fallback: "Retracted: Swap 5 ETH".into(),
        };
        let group = b"group-1";
        let encoded = EncodedContent::decode(reply.encode_in(group).as_slice()).unwrap();
        assert_eq!(encoded.r#type, Some(reply_content_type()));
        let want = hex::encode(message_id(group, "ann_1:0xabc", &encode_text("Swap 5 ETH")));
        assert_eq!(encoded.parameters["reference"], want);
        assert_eq!(encoded.parameters["contentType"], "xmtp.org/text:1.0");
        assert_eq!(encoded.fallback.as_deref(), Some("Retracted: Swap 5 ETH"));
        let inner = EncodedContent::decode(encoded.content.as_slice()).unwrap();
        assert_eq!(inner.r#type, Some(text_content_type()));
        assert_eq!(inner.content, b"Retracted");
        // Another DM, another id.
        let other = EncodedContent::decode(reply.encode_in(b"group-2").as_slice()).unwrap();
        assert_ne!(other.parameters["reference"], want);
        // A given id is used as it is.
        let by_id = Content::Reply {
            target: ReplyTarget::Id("abcd".into()),
            text: "x".into(),
            fallback: "x".into(),
        };
        let by_id = EncodedContent::decode(by_id.encode().as_slice()).unwrap();
        assert_eq!(by_id.parameters["reference"], "abcd");
    }

    #[test]
    fn envelope_round_trips() {
        let env = envelope(encode_text("hi"), "key-1");
        let d = decode_envelope(&env).unwrap();
        assert_eq!(d.text.as_deref(), Some("hi"));
        assert_eq!(d.idempotency_key, "key-1");
    }
}
