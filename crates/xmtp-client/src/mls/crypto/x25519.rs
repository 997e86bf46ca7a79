//! [`AwsLcX25519`]: the HPKE backend (hpke-rs) of the openmls provider and the welcome
//! wrapper — RustCrypto, except X25519 and ChaCha20-Poly1305 from aws-lc (see the parent
//! module and [`super::aead`] for why).

use std::cell::RefCell;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::constant_time;
use hpke_rs::hpke_types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs::rustcrypto::HpkeRustCrypto;
use hpke_rs_crypto::{error::Error as HpkeCryptoError, HpkeCrypto};
use zeroize::Zeroizing;

/// hpke-rs backend: RustCrypto, except X25519 (key derivation and Diffie-Hellman) and
/// ChaCha20-Poly1305 from aws-lc.
#[derive(Debug)]
pub struct AwsLcX25519;

fn x25519_key(sk: &[u8]) -> Result<PrivateKey, HpkeCryptoError> {
    if sk.len() != 32 {
        return Err(HpkeCryptoError::KemInvalidSecretKey);
    }
    PrivateKey::from_private_key(&X25519, sk).map_err(|_| HpkeCryptoError::KemInvalidSecretKey)
}

thread_local! {
    /// The X25519 key this thread parsed last, kept for the next call only.
    static LAST_KEY: RefCell<Option<(Zeroizing<Vec<u8>>, PrivateKey)>> = const { RefCell::new(None) };
}

/// Runs `f` on `sk` parsed as an aws-lc key. Parsing computes the public key (a fixed-base
/// scalar multiplication), and HPKE uses each key twice in a row: encapsulation derives the
/// ephemeral public key, then runs Diffie-Hellman with the same secret; decapsulation does
/// the reverse. So a parsed key is kept (per thread) for exactly one more call: a second use
/// takes it, anything else replaces it. Halves the base-point multiplications of an HPKE
/// encryption. The secret comparison is constant-time.
fn with_x25519_key<R>(sk: &[u8], f: impl FnOnce(&PrivateKey) -> R) -> Result<R, HpkeCryptoError> {
    LAST_KEY.with(|last| {
        let mut last = last.borrow_mut();
        let hit = last
            .as_ref()
            .is_some_and(|(bytes, _)| constant_time::verify_slices_are_equal(bytes, sk).is_ok());
        if hit {
            let (_, key) = last.take().expect("checked");
            return Ok(f(&key));
        }
        let key = x25519_key(sk)?;
        let out = f(&key);
        *last = Some((Zeroizing::new(sk.to_vec()), key));
        Ok(out)
    })
}

impl HpkeCrypto for AwsLcX25519 {
    type HpkePrng = <HpkeRustCrypto as HpkeCrypto>::HpkePrng;

    fn name() -> String {
        "RustCrypto with aws-lc X25519 and ChaCha20-Poly1305".to_owned()
    }

    fn supports_kdf(alg: KdfAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_kdf(alg)
    }

    fn supports_kem(alg: KemAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_kem(alg)
    }

    fn supports_aead(alg: AeadAlgorithm) -> Result<(), HpkeCryptoError> {
        HpkeRustCrypto::supports_aead(alg)
    }

    fn prng() -> Self::HpkePrng {
        HpkeRustCrypto::prng()
    }

    fn kdf_extract(alg: KdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kdf_extract(alg, salt, ikm)
    }

    fn kdf_expand(
        alg: KdfAlgorithm,
        prk: &[u8],
        info: &[u8],
        output_size: usize,
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kdf_expand(alg, prk, info, output_size)
    }

    fn dh(alg: KemAlgorithm, pk: &[u8], sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        if alg != KemAlgorithm::DhKem25519 {
            return HpkeRustCrypto::dh(alg, pk, sk);
        }
        if pk.len() != 32 {
            return Err(HpkeCryptoError::KemInvalidPublicKey);
        }
        // aws-lc refuses a peer key whose shared secret is all zeros (a low-order point), as
        // RFC 9180 requires and RustCrypto's backend does.
        with_x25519_key(sk, |sk| {
            agreement::agree(
                sk,
                UnparsedPublicKey::new(&X25519, pk),
                HpkeCryptoError::KemInvalidPublicKey,
                |secret| Ok(secret.to_vec()),
            )
        })?
    }

    fn secret_to_public(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        if alg != KemAlgorithm::DhKem25519 {
            return HpkeRustCrypto::secret_to_public(alg, sk);
        }
        with_x25519_key(sk, |sk| {
            sk.compute_public_key()
                .map(|public| public.as_ref().to_vec())
                .map_err(|_| HpkeCryptoError::KemInvalidSecretKey)
        })?
    }

    fn kem_key_gen(
        alg: KemAlgorithm,
        prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        HpkeRustCrypto::kem_key_gen(alg, prng)
    }

    fn kem_key_gen_derand(
        alg: KemAlgorithm,
        seed: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        HpkeRustCrypto::kem_key_gen_derand(alg, seed)
    }

    fn kem_encaps(
        alg: KemAlgorithm,
        pk_r: &[u8],
        prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), HpkeCryptoError> {
        HpkeRustCrypto::kem_encaps(alg, pk_r, prng)
    }

    fn kem_decaps(alg: KemAlgorithm, ct: &[u8], sk_r: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::kem_decaps(alg, ct, sk_r)
    }

    fn dh_validate_sk(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeCryptoError> {
        HpkeRustCrypto::dh_validate_sk(alg, sk)
    }

    fn aead_seal(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        if alg != AeadAlgorithm::ChaCha20Poly1305 {
            return HpkeRustCrypto::aead_seal(alg, key, nonce, aad, msg);
        }
        if nonce.len() != 12 {
            return Err(HpkeCryptoError::AeadInvalidNonce);
        }
        super::aead::seal(key, nonce, aad, msg)
            .map_err(|_| HpkeCryptoError::CryptoLibraryError("AEAD key length".to_owned()))
    }

    fn aead_open(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, HpkeCryptoError> {
        if alg != AeadAlgorithm::ChaCha20Poly1305 {
            return HpkeRustCrypto::aead_open(alg, key, nonce, aad, msg);
        }
        if nonce.len() != 12 {
            return Err(HpkeCryptoError::AeadInvalidNonce);
        }
        if msg.len() < 16 {
            return Err(HpkeCryptoError::AeadInvalidCiphertext);
        }
        super::aead::open(key, nonce, aad, msg).map_err(|_| HpkeCryptoError::AeadOpenError)
    }
}
