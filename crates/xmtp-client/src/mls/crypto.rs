//! The crypto under openmls and the welcome wrapper: RustCrypto, with X25519 and
//! ChaCha20-Poly1305 ([`aead`]) from aws-lc.
//!
//! A first-contact DM costs X25519 operations in two HPKE seals (the group secrets' and the
//! welcome wrapper's, each a key generation and an agreement); when the commit still had an
//! update path and each DM a fresh leaf key there were about seven. Through x25519-dalek's
//! portable Montgomery ladder they were ~14% of a
//! first-contact broadcast's CPU (perf, 2026-12-05); aws-lc's X25519 (already linked for TLS
//! and Ed25519 signing) does the same RFC 7748 function in about half the time. ChaCha20-
//! Poly1305, XMTP's AEAD, is aws-lc's too (3-7× faster, see [`aead`]). Everything else —
//! hashing, HKDF, other AEADs, signatures, randomness — stays with RustCrypto.
//!
//! Ed25519 verifications can be recorded and checked later as one batch
//! ([`xmtp_proto::ed25519`]).
//!
//! [`AwsLcX25519`] is the HPKE backend (hpke-rs) with those changes; [`XmtpCrypto`] is the
//! openmls crypto provider that runs its HPKE through it.

use hpke_rs::hpke_types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs::{Hpke, HpkeError, Mode};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType, HpkeCiphertext,
    HpkeConfig, HpkeKdfType, HpkeKemType, HpkeKeyPair, SignatureScheme,
};
use tls_codec::SecretVLBytes;
use xmtp_proto::ed25519;

pub mod aead;
mod x25519;

pub use x25519::AwsLcX25519;

/// An HPKE base-mode suite on [`AwsLcX25519`].
pub fn hpke(kem: KemAlgorithm, kdf: KdfAlgorithm, aead: AeadAlgorithm) -> Hpke<AwsLcX25519> {
    Hpke::new(Mode::Base, kem, kdf, aead)
}

fn hpke_for(config: HpkeConfig) -> Result<Hpke<AwsLcX25519>, CryptoError> {
    let kem = match config.0 {
        HpkeKemType::DhKemP256 => KemAlgorithm::DhKemP256,
        HpkeKemType::DhKemP384 => KemAlgorithm::DhKemP384,
        HpkeKemType::DhKemP521 => KemAlgorithm::DhKemP521,
        HpkeKemType::DhKem25519 => KemAlgorithm::DhKem25519,
        HpkeKemType::DhKem448 => KemAlgorithm::DhKem448,
    };
    let kdf = match config.1 {
        HpkeKdfType::HkdfSha256 => KdfAlgorithm::HkdfSha256,
        HpkeKdfType::HkdfSha384 => KdfAlgorithm::HkdfSha384,
        HpkeKdfType::HkdfSha512 => KdfAlgorithm::HkdfSha512,
    };
    let aead = match config.2 {
        HpkeAeadType::AesGcm128 => AeadAlgorithm::Aes128Gcm,
        HpkeAeadType::AesGcm256 => AeadAlgorithm::Aes256Gcm,
        HpkeAeadType::ChaCha20Poly1305 => AeadAlgorithm::ChaCha20Poly1305,
        HpkeAeadType::Export => AeadAlgorithm::HpkeExport,
    };
    Ok(hpke(kem, kdf, aead))
}

fn seal_error(e: HpkeError) -> CryptoError {
    match e {
        HpkeError::InvalidInput => CryptoError::InvalidLength,
        HpkeError::InsufficientRandomness => CryptoError::InsufficientRandomness,
        _ => CryptoError::HpkeEncryptionError,
    }
}

/// The openmls crypto provider: RustCrypto with its HPKE on [`AwsLcX25519`].
#[derive(Debug, Default)]
pub struct XmtpCrypto {
    rust: RustCrypto,
}

impl XmtpCrypto {
    /// RustCrypto, also the provider's source of randomness.
    pub fn rust(&self) -> &RustCrypto {
        &self.rust
    }
}

impl OpenMlsCrypto for XmtpCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.rust.supports(ciphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.rust.supported_ciphersuites()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust.hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust.hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust.hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust.hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if alg == AeadType::ChaCha20Poly1305 {
            return aead::seal(key, nonce, aad, data).map_err(|_| CryptoError::CryptoLibraryError);
        }
        self.rust.aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if alg == AeadType::ChaCha20Poly1305 {
            return aead::open(key, nonce, aad, ct_tag)
                .map_err(|_| CryptoError::AeadDecryptionError);
        }
        self.rust.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.rust.signature_key_gen(alg)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if alg == SignatureScheme::ED25519
            && ed25519::record(|| ed25519::DeferredSignature::new(data, pk, signature))
        {
            return Ok(());
        }
        self.rust.verify_signature(alg, data, pk, signature)
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust.sign(alg, data, key)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        let (kem_output, ciphertext) = hpke_for(config)?
            .seal(&pk_r.into(), info, aad, ptxt, None, None, None)
            .map_err(seal_error)?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        hpke_for(config)?
            .open(
                input.kem_output.as_slice(),
                &sk_r.into(),
                info,
                aad,
                input.ciphertext.as_slice(),
                None,
                None,
                None,
            )
            .map_err(|_| CryptoError::HpkeDecryptionError)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(Vec<u8>, ExporterSecret), CryptoError> {
        let (kem_output, context) = hpke_for(config)?
            .setup_sender(&pk_r.into(), info, None, None, None)
            .map_err(|_| CryptoError::SenderSetupError)?;
        let secret = context
            .export(exporter_context, exporter_length)
            .map_err(|_| CryptoError::ExporterError)?;
        Ok((kem_output, secret.into()))
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        let context = hpke_for(config)?
            .setup_receiver(enc, &sk_r.into(), info, None, None, None)
            .map_err(|_| CryptoError::ReceiverSetupError)?;
        let secret = context
            .export(exporter_context, exporter_length)
            .map_err(|_| CryptoError::ExporterError)?;
        Ok(secret.into())
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        // A new group's creator leaf shares the client's current key pair (see creator_leaf).
        if let Some(key_pair) = super::creator_leaf::take_next_key_pair() {
            return Ok(key_pair);
        }
        let (private, public) = hpke_for(config)?
            .derive_key_pair(ikm)
            .map_err(|e| match e {
                HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?
            .into_keys();
        Ok(HpkeKeyPair {
            private: private.as_slice().to_vec().into(),
            public: public.as_slice().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
