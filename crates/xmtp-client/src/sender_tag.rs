//! Sender tags: the `sender_hmac` of a published group message, as a proof "I sent this".
//!
//! libxmtp fills `sender_hmac` so that push servers and the sender's own devices can tell a
//! sender's messages apart without decrypting. A client given a tag key
//! ([`crate::Client::with_sender_tag_key`]) sets it to HMAC-SHA256(key, ciphertext): anyone
//! holding the key (a process following the sender's DMs) recognises the sender's own messages
//! on a stream; without the key the tag is indistinguishable from random, as before.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The tag of `data` (a group message's ciphertext) under `key`.
pub fn sender_tag(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `tag` is [`sender_tag`] of `data` under `key` (constant time).
pub fn is_own(key: &[u8; 32], data: &[u8], tag: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_key_holder_recognises_the_tag() {
        let (key, other) = ([7u8; 32], [8u8; 32]);
        let tag = super::sender_tag(&key, b"ciphertext");
        assert!(super::is_own(&key, b"ciphertext", &tag));
        assert!(!super::is_own(&other, b"ciphertext", &tag));
        assert!(!super::is_own(&key, b"other ciphertext", &tag));
        assert!(!super::is_own(&key, b"ciphertext", &[0u8; 32]));
    }
}
