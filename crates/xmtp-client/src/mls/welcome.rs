//! The HPKE wrapper around XMTP welcomes (libxmtp `welcome_wrapper`).
//!
//! One HPKE base-mode context (DHKEM-X25519 / HKDF-SHA256 / ChaCha20-Poly1305) to the recipient
//! key package's `init_key`, `info` = TLS `EncryptContext{"MLS 1.0 MLS_WELCOME", ""}`, empty
//! aad, and **two** seals from that same context: the TLS `MLSMessage(Welcome)` becomes a TLS
//! `HPKECiphertext{kem_output, ciphertext}`, then the protobuf `WelcomeMetadata` becomes a raw
//! AEAD ciphertext (sequence number 1). libxmtp 1.10 stores an init-key → key-package
//! reference for every key package, so this CURVE25519 wrapping reaches SDK peers even when
//! they also advertise an X-Wing key (0xff03).

use hpke_rs::hpke_types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs::{Hpke, HpkePrivateKey, HpkePublicKey};
use openmls_traits::types::HpkeCiphertext;
use tls_codec::{Deserialize as _, Serialize as _};

use super::crypto::{hpke, AwsLcX25519};

/// `info` bytes: TLS EncryptContext with label "MLS 1.0 MLS_WELCOME" and an empty context.
fn welcome_info() -> Vec<u8> {
    const LABEL: &[u8] = b"MLS 1.0 MLS_WELCOME";
    let mut info = Vec::with_capacity(LABEL.len() + 2);
    info.push(LABEL.len() as u8);
    info.extend_from_slice(LABEL);
    info.push(0);
    info
}

fn suite() -> Hpke<AwsLcX25519> {
    hpke(
        KemAlgorithm::DhKem25519,
        KdfAlgorithm::HkdfSha256,
        AeadAlgorithm::ChaCha20Poly1305,
    )
}

/// Errors from wrapping or unwrapping a welcome.
#[derive(Debug, thiserror::Error)]
pub enum WelcomeWrapError {
    /// HPKE setup, seal or open failed (bad key, tampered ciphertext). Not retryable.
    #[error("welcome HPKE operation failed: {0:?}")]
    Hpke(hpke_rs::HpkeError),
    /// The wrapped welcome is not a TLS HPKECiphertext. Not retryable.
    #[error("wrapped welcome is malformed: {0}")]
    Codec(#[from] tls_codec::Error),
}

/// A welcome sealed for one installation.
#[derive(Debug, Clone)]
pub struct WrappedWelcome {
    /// `WelcomeMessageInput.V1.data`: TLS HPKECiphertext of the MLS welcome.
    pub data: Vec<u8>,
    /// `WelcomeMessageInput.V1.welcome_metadata`: AEAD ciphertext of `WelcomeMetadata`.
    pub welcome_metadata: Vec<u8>,
}

/// Seals `welcome` and `metadata` to the recipient's key-package `init_key`.
pub fn wrap_welcome(
    welcome: &[u8],
    metadata: &[u8],
    init_key: &[u8],
) -> Result<WrappedWelcome, WelcomeWrapError> {
    let mut hpke = suite();
    let pk = HpkePublicKey::new(init_key.to_vec());
    let (enc, mut ctx) = hpke
        .setup_sender(&pk, &welcome_info(), None, None, None)
        .map_err(WelcomeWrapError::Hpke)?;
    let ciphertext = ctx.seal(&[], welcome).map_err(WelcomeWrapError::Hpke)?;
    let welcome_metadata = ctx.seal(&[], metadata).map_err(WelcomeWrapError::Hpke)?;
    let data = HpkeCiphertext {
        kem_output: enc.into(),
        ciphertext: ciphertext.into(),
    }
    .tls_serialize_detached()?;
    Ok(WrappedWelcome {
        data,
        welcome_metadata,
    })
}

/// Opens a wrapped welcome with the key package's init private key; returns the MLS welcome
/// bytes and the metadata bytes (empty if the sender sent none).
pub fn unwrap_welcome(
    data: &[u8],
    welcome_metadata: &[u8],
    init_private_key: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), WelcomeWrapError> {
    let ct = HpkeCiphertext::tls_deserialize_exact(data)?;
    let sk = HpkePrivateKey::new(init_private_key.to_vec());
    let mut ctx = suite()
        .setup_receiver(
            ct.kem_output.as_slice(),
            &sk,
            &welcome_info(),
            None,
            None,
            None,
        )
        .map_err(WelcomeWrapError::Hpke)?;
    let welcome = ctx
        .open(&[], ct.ciphertext.as_slice())
        .map_err(WelcomeWrapError::Hpke)?;
    let metadata = if welcome_metadata.is_empty() {
        Vec::new()
    } else {
        ctx.open(&[], welcome_metadata)
            .map_err(WelcomeWrapError::Hpke)?
    };
    Ok((welcome, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_matches_the_tls_encrypt_context() {
        let info = welcome_info();
        assert_eq!(info[0], 0x13);
        assert_eq!(&info[1..20], b"MLS 1.0 MLS_WELCOME");
        assert_eq!(info[20], 0);
    }

    #[test]
    fn wrap_then_unwrap_with_two_seals() {
        let kp = suite().generate_key_pair().unwrap();
        let (sk, pk) = kp.into_keys();
        let wrapped = wrap_welcome(b"welcome-bytes", b"\x08\x2a", pk.as_slice()).unwrap();
        let (w, m) =
            unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, sk.as_slice()).unwrap();
        assert_eq!(w, b"welcome-bytes");
        assert_eq!(m, b"\x08\x2a");
        // The metadata is sealed with the second nonce: opening it first must fail.
        let ct = HpkeCiphertext::tls_deserialize_exact(&wrapped.data).unwrap();
        let mut ctx = suite()
            .setup_receiver(
                ct.kem_output.as_slice(),
                &sk,
                &welcome_info(),
                None,
                None,
                None,
            )
            .unwrap();
        assert!(ctx.open(&[], &wrapped.welcome_metadata).is_err());
    }
}
