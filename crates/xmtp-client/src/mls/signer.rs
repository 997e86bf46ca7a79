//! The installation key: an Ed25519 key pair that is the installation id, the MLS leaf signature
//! key and the identity-update co-signer.
//!
//! openmls's own `SignatureKeyPair` rebuilds the expanded signing key from the 32-byte seed on
//! every signature (one extra fixed-base scalar multiplication, ~13 µs of a ~35 µs message).
//! [`InstallationKey`] keeps the key expanded for its whole lifetime.
//!
//! Every message is signed once, so signing speed is part of the send rate: plain signatures come
//! from aws-lc (the same deterministic Ed25519 bytes, ~10 µs instead of dalek's ~19 µs here);
//! the public key and the Ed25519ph identity signatures stay with ed25519-dalek.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// Context string of Ed25519ph installation signatures over identity-update signature text.
pub use xmtp_proto::associations::verify::INSTALLATION_SIGNATURE_CONTEXT as IDENTITY_UPDATE_CONTEXT;

/// An installation's Ed25519 key, held expanded in memory.
#[derive(Clone)]
pub struct InstallationKey {
    signing: SigningKey,
    /// The same key for plain signatures.
    fast: Arc<Ed25519KeyPair>,
}

impl InstallationKey {
    /// Generates a fresh installation key from the OS random source.
    pub fn generate() -> Self {
        Self::from_seed(&SigningKey::generate(&mut rand::rngs::OsRng).to_bytes())
    }

    /// Rebuilds the key from its 32-byte seed (as stored by [`InstallationKey::to_seed`]).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let fast = Ed25519KeyPair::from_seed_unchecked(seed)
            .expect("every 32-byte string is an Ed25519 seed");
        let signing = SigningKey::from_bytes(seed);
        debug_assert_eq!(
            fast.public_key().as_ref(),
            signing.verifying_key().as_bytes()
        );
        Self {
            signing,
            fast: Arc::new(fast),
        }
    }

    /// The secret seed, for durable storage only.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The 32-byte public key: the installation id.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The Ed25519 key itself, for the identity-update signers in `xmtp_proto`.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The verifying half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Ed25519ph (SHA-512 prehash) with `context`, as XMTP identity updates require; plain
    /// Ed25519 over the same text is rejected by every verifier.
    pub fn sign_prehashed(&self, message: &[u8], context: &[u8]) -> [u8; 64] {
        let mut digest = Sha512::new();
        digest.update(message);
        self.signing
            .sign_prehashed(digest, Some(context))
            .expect("context is shorter than 256 bytes")
            .to_bytes()
    }
}

impl Signer for InstallationKey {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.fast.sign(payload).as_ref().to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

impl std::fmt::Debug for InstallationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationKey")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signature;

    #[test]
    fn prehashed_signature_verifies_with_context_only() {
        let key = InstallationKey::generate();
        let sig = Signature::from_bytes(&key.sign_prehashed(b"text", IDENTITY_UPDATE_CONTEXT));
        let mut d = Sha512::new();
        d.update(b"text");
        assert!(key
            .verifying_key()
            .verify_prehashed(d.clone(), Some(IDENTITY_UPDATE_CONTEXT), &sig)
            .is_ok());
        assert!(key
            .verifying_key()
            .verify_prehashed(d, Some(b"other"), &sig)
            .is_err());
    }

    #[test]
    fn signatures_are_the_deterministic_ed25519_ones() {
        use ed25519_dalek::{Signer as _, Verifier as _};
        for seed in [[7u8; 32], [0u8; 32], [255u8; 32]] {
            let key = InstallationKey::from_seed(&seed);
            let dalek = SigningKey::from_bytes(&seed);
            for payload in [b"".as_slice(), b"payload", &[9u8; 1000]] {
                let ours = Signer::sign(&key, payload).unwrap();
                assert_eq!(ours, dalek.sign(payload).to_bytes().to_vec());
                let sig = Signature::from_slice(&ours).unwrap();
                assert!(key.verifying_key().verify(payload, &sig).is_ok());
            }
        }
    }

    #[test]
    fn debug_hides_secret() {
        let key = InstallationKey::from_seed(&[7u8; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
    }
}
