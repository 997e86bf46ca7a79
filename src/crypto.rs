//! Key material: the master key (KEK) that seals secrets at rest, API tokens, and channel
//! wallet keys.
//!
//! Secrets at rest are sealed with XChaCha20-Poly1305 under the KEK with a random 24-byte nonce
//! (random nonces are safe at this size; no counter state to lose). The owning row's id is bound
//! as associated data, so a sealed blob copied onto another row fails to open. XChaCha20 is
//! ChaCha20 under an HChaCha20 subkey (draft-irtf-cfrg-xchacha): the subkey comes from
//! RustCrypto's `hchacha`, the ChaCha20-Poly1305 from aws-lc (`xmtp_client`'s AEAD, 3-7× faster
//! than RustCrypto's; the state of every new DM is sealed here). Same bytes as before, tested
//! against RustCrypto's XChaCha20-Poly1305 both ways.
//!
//! API keys and the admin token are high-entropy random strings, so a single SHA-256 is the
//! right storage hash: a slow password hash would only add latency to every request without
//! adding security against guessing 190+ bits.

use std::fmt;

use chacha20::cipher::consts::U10;
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use xmtp_client::mls::crypto::aead;
use zeroize::Zeroizing;

use crate::domain::Address;

const NONCE_LEN: usize = 24;

/// Number of base62 characters after an API token's prefix (about 238 bits of entropy).
pub const TOKEN_BODY_LEN: usize = 40;

/// Prefix of tenant API keys; recognizable in leaked-secret scanners and support tickets.
pub const API_KEY_PREFIX: &str = "hk_";

/// Prefix of generated admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "hadm_";

/// Errors from sealing and opening secrets.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key text is not 32 bytes of hex or base64. Not retryable: fix the config.
    #[error("master key must be 32 bytes encoded as 64 hex characters or base64")]
    BadMasterKey,
    /// A sealed blob failed authentication: wrong master key, or the data was tampered with.
    /// Not retryable.
    #[error("sealed secret could not be opened (wrong master key or corrupted data)")]
    OpenFailed,
}

/// The key-encryption key. `Debug` never prints the bytes.
///
/// During a master-key rotation it also holds the previous key ([`MasterKey::with_previous`]):
/// it seals under the current key and opens values sealed under either, so a server keeps
/// working while `herald keys rotate-master` re-seals what the old key sealed.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    previous: Option<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Parses 64 hex characters or standard base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine as _;
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).ok()
        } else {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        };
        let bytes = bytes.ok_or(CryptoError::BadMasterKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self::from_bytes(key))
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        Self {
            key,
            previous: None,
        }
    }

    /// This key, also opening values sealed under `previous` (the key being rotated away).
    pub fn with_previous(mut self, previous: &MasterKey) -> Self {
        self.previous = Some(previous.key);
        self
    }

    /// Whether `sealed` opens under the current key alone (not the previous one).
    pub fn opens_with_current(&self, sealed: &[u8], context: &str) -> bool {
        open_with(&self.key, sealed, context).is_ok()
    }

    /// Generates a fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    /// Hex encoding, used only to write a generated key to its file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// A 32-byte key for one purpose, derived from the master key (HMAC-SHA256 over `label`),
    /// so a derived key can be handed to code that must not hold the master key itself.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Seals `plaintext`, binding it to `context` (the owning row's id). Output: nonce ‖ ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        // A 192-bit random nonce from the thread's CSPRNG (ChaCha, seeded and periodically
        // reseeded from the OS): no system call per seal, and one seal per message sent.
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let (subkey, inner_nonce) = xchacha(&self.key, &nonce);
        let sealed = aead::seal(subkey.as_ref(), &inner_nonce, context.as_bytes(), plaintext)
            .expect("a 32-byte key and a 12-byte nonce");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a blob produced by [`MasterKey::seal`] with the same `context`, under the current
    /// key or else the previous one.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        match (open_with(&self.key, sealed, context), &self.previous) {
            (Err(_), Some(previous)) => open_with(previous, sealed, context),
            (result, _) => result,
        }
    }
}

/// XChaCha20-Poly1305's ChaCha20-Poly1305 key and nonce for a 24-byte nonce: the HChaCha20
/// subkey of its first 16 bytes, and its last 8 after four zero bytes.
fn xchacha(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let subkey = chacha20::hchacha::<U10>(key.into(), nonce[..16].into());
    let mut inner_nonce = [0u8; 12];
    inner_nonce[4..].copy_from_slice(&nonce[16..]);
    (Zeroizing::new(subkey.into()), inner_nonce)
}

fn open_with(key: &[u8; 32], sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
    let Some((nonce, body)) = sealed.split_first_chunk::<NONCE_LEN>() else {
        return Err(CryptoError::OpenFailed);
    };
    let (subkey, inner_nonce) = xchacha(key, nonce);
    aead::open(subkey.as_ref(), &inner_nonce, context.as_bytes(), body)
        .map_err(|_| CryptoError::OpenFailed)
}

/// Generates a bearer token: `prefix` + [`TOKEN_BODY_LEN`] base62 characters.
pub fn generate_token(prefix: &str) -> String {
    let body = Alphanumeric.sample_string(&mut rand::rngs::OsRng, TOKEN_BODY_LEN);
    format!("{prefix}{body}")
}

/// The stored form of a bearer token: lowercase hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A freshly generated channel wallet: its secret key bytes and derived address.
pub struct ChannelWallet {
    secret: [u8; 32],
    pub address: Address,
}

impl fmt::Debug for ChannelWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelWallet")
            .field("address", &self.address)
            .field("secret", &"***")
            .finish()
    }
}

impl ChannelWallet {
    /// Generates a new secp256k1 key from the OS random source.
    pub fn generate() -> Self {
        let key = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let address = Address::from_public_key(key.verifying_key());
        Self {
            secret: key.to_bytes().into(),
            address,
        }
    }

    /// Seals the secret key under the KEK, bound to the channel id.
    pub fn seal(&self, kek: &MasterKey, channel_id: &str) -> Vec<u8> {
        kek.seal(&self.secret, channel_id)
    }

    /// Opens a sealed wallet key (used by the delivery pipeline to act as the channel).
    pub fn open(
        kek: &MasterKey,
        sealed: &[u8],
        channel_id: &str,
    ) -> Result<k256::ecdsa::SigningKey, CryptoError> {
        let bytes = kek.open(sealed, channel_id)?;
        k256::ecdsa::SigningKey::from_slice(&bytes).map_err(|_| CryptoError::OpenFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_with_same_key_and_context() {
        let kek = MasterKey::generate();
        let sealed = kek.seal(b"secret", "ch_1");
        assert_eq!(kek.open(&sealed, "ch_1").unwrap(), b"secret");
        assert!(kek.open(&sealed, "ch_2").is_err());
        assert!(MasterKey::generate().open(&sealed, "ch_1").is_err());
        assert!(!format!("{kek:?}").contains(&kek.to_hex()));
    }

    #[test]
    fn sealing_is_rustcrypto_xchacha20_poly1305_both_ways() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let kek = MasterKey::generate();
        let reference = XChaCha20Poly1305::new((&kek.key).into());
        for len in [0usize, 1, 32, 200, 5000] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = kek.seal(&plaintext, "ch_1");
            let (nonce, body) = sealed.split_at(NONCE_LEN);
            let payload = |msg| Payload { msg, aad: b"ch_1" };
            let opened = reference.decrypt(XNonce::from_slice(nonce), payload(body));
            assert_eq!(opened.unwrap(), plaintext);
            let mut by_reference = nonce.to_vec();
            by_reference.extend(
                reference
                    .encrypt(XNonce::from_slice(nonce), payload(&plaintext))
                    .unwrap(),
            );
            assert_eq!(by_reference, sealed);
            assert_eq!(kek.open(&by_reference, "ch_1").unwrap(), plaintext);
        }
        assert!(kek.open(&[0u8; NONCE_LEN + 15], "ch_1").is_err());
        assert!(kek.open(&[0u8; 3], "ch_1").is_err());
    }

    #[test]
    fn a_rotating_key_seals_under_the_new_key_and_opens_both() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let by_old = old.seal(b"secret", "ch_1");
        let ring = new.clone().with_previous(&old);
        assert_eq!(ring.open(&by_old, "ch_1").unwrap(), b"secret");
        assert!(!ring.opens_with_current(&by_old, "ch_1"));
        assert!(ring.open(&by_old, "ch_2").is_err(), "context still bound");
        let by_ring = ring.seal(b"secret", "ch_1");
        assert_eq!(new.open(&by_ring, "ch_1").unwrap(), b"secret");
        assert!(old.open(&by_ring, "ch_1").is_err());
    }

    #[test]
    fn wallet_round_trips_through_the_kek() {
        let kek = MasterKey::generate();
        let wallet = ChannelWallet::generate();
        let sealed = wallet.seal(&kek, "ch_x");
        let key = ChannelWallet::open(&kek, &sealed, "ch_x").unwrap();
        assert_eq!(
            Address::from_public_key(key.verifying_key()),
            wallet.address
        );
    }

    #[test]
    fn tokens_have_prefix_and_base62_body() {
        let token = generate_token(API_KEY_PREFIX);
        assert!(token.starts_with("hk_"));
        assert_eq!(token.len(), 3 + TOKEN_BODY_LEN);
        assert!(token[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(hash_token(&token).len(), 64);
    }

    #[test]
    fn master_key_accepts_hex_and_base64() {
        let key = MasterKey::generate();
        assert!(MasterKey::parse(&key.to_hex()).is_ok());
        assert!(MasterKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(MasterKey::parse("short").is_err());
    }
}
