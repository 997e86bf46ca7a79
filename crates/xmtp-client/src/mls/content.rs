//! Message contents: `xmtp.org/text:1.0` EncodedContent inside a PlaintextEnvelope V1.

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
    fn envelope_round_trips() {
        let env = envelope(encode_text("hi"), "key-1");
        let d = decode_envelope(&env).unwrap();
        assert_eq!(d.text.as_deref(), Some("hi"));
        assert_eq!(d.idempotency_key, "key-1");
    }
}
