//! Signature verification for identity updates.
//!
//! Wallets sign with ERC-191 `personal_sign` (65 bytes `r || s || v`, `v` either 27/28 or
//! 0/1; high-s signatures are normalised first, as libxmtp does). Installations sign with
//! Ed25519ph (SHA-512 prehash) under the context `IDENTITY UPDATE SIGNATURE`; plain Ed25519
//! signatures therefore do not verify.

use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey as EcdsaKey};
use sha2::{Digest, Sha512};
use sha3::Keccak256;

use super::{AssociationError, MemberId};
use crate::associations_proto::{signature, Signature};
use crate::ed25519::DeferredSignature;

/// Ed25519ph context of identity-update signatures.
pub const INSTALLATION_SIGNATURE_CONTEXT: &[u8] = b"IDENTITY UPDATE SIGNATURE";

/// How a signer proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// ERC-191 by an externally owned wallet.
    Erc191,
    /// Ed25519ph by an installation key.
    InstallationKey,
}

/// A signature that verified, with who made it and the raw bytes used for replay checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub signer: MemberId,
    pub kind: SignatureKind,
    pub raw: Vec<u8>,
}

/// Verifies `sig` over `text` and returns the signer.
pub fn verify_signature(
    text: &str,
    sig: &Signature,
) -> Result<VerifiedSignature, AssociationError> {
    match sig
        .signature
        .as_ref()
        .ok_or(AssociationError::MissingField("signature"))?
    {
        signature::Signature::Erc191(s) => Ok(VerifiedSignature {
            signer: MemberId::Ethereum(recover_erc191(text, &s.bytes)?),
            kind: SignatureKind::Erc191,
            raw: s.bytes.clone(),
        }),
        signature::Signature::InstallationKey(s) => {
            verify_installation(text, &s.bytes, &s.public_key)?;
            Ok(VerifiedSignature {
                signer: MemberId::Installation(s.public_key.clone()),
                kind: SignatureKind::InstallationKey,
                raw: s.bytes.clone(),
            })
        }
        signature::Signature::Erc6492(_) => Err(AssociationError::Unsupported(
            "smart-contract wallet signature",
        )),
        signature::Signature::DelegatedErc191(_) => {
            Err(AssociationError::Unsupported("legacy delegated signature"))
        }
        signature::Signature::Passkey(_) => Err(AssociationError::Unsupported("passkey signature")),
    }
}

/// The EIP-191 `personal_sign` digest of `text`.
pub fn erc191_hash(text: &str) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", text.len()).as_bytes());
    hasher.update(text.as_bytes());
    hasher.finalize().into()
}

/// Recovers the lowercase `0x` address that made the 65-byte ERC-191 signature over `text`.
pub fn recover_erc191(text: &str, sig: &[u8]) -> Result<String, AssociationError> {
    if sig.len() != 65 {
        return Err(AssociationError::MalformedSignature(
            "ERC-191 signature must be 65 bytes",
        ));
    }
    let v = match sig[64] {
        27 | 28 => sig[64] - 27,
        0 | 1 => sig[64],
        _ => {
            return Err(AssociationError::MalformedSignature(
                "ERC-191 v must be 0, 1, 27 or 28",
            ))
        }
    };
    let mut signature = EcdsaSignature::from_slice(&sig[..64])
        .map_err(|_| AssociationError::MalformedSignature("ERC-191 r/s out of range"))?;
    let mut recid = RecoveryId::from_byte(v)
        .ok_or(AssociationError::MalformedSignature("ERC-191 recovery id"))?;
    // A high-s signature is the same signature as (r, n - s) with the y parity flipped.
    if let Some(low) = signature.normalize_s() {
        signature = low;
        recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
    }
    // Recovery runs in libsecp256k1: a new peer's identity costs one recovery per wallet
    // signature, and k256's (which also re-verifies the recovered key) took ~190 µs of the
    // ~1,400 µs of CPU a first-contact DM costs; libsecp256k1 takes ~40 µs (issue 15).
    let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(recid.to_byte()))
        .map_err(|_| AssociationError::MalformedSignature("ERC-191 recovery id"))?;
    let signature =
        secp256k1::ecdsa::RecoverableSignature::from_compact(&signature.to_bytes(), recid)
            .map_err(|_| AssociationError::MalformedSignature("ERC-191 r/s out of range"))?;
    let key = secp()
        .recover_ecdsa(
            secp256k1::Message::from_digest(erc191_hash(text)),
            &signature,
        )
        .map_err(|_| AssociationError::BadSignature)?;
    Ok(address_of_uncompressed(&key.serialize_uncompressed()))
}

/// libsecp256k1's verification context, made once (it precomputes tables).
fn secp() -> &'static secp256k1::Secp256k1<secp256k1::VerifyOnly> {
    static CONTEXT: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
        std::sync::OnceLock::new();
    CONTEXT.get_or_init(secp256k1::Secp256k1::verification_only)
}

/// The lowercase `0x` address of a secp256k1 public key.
pub fn eth_address(key: &EcdsaKey) -> String {
    let point = key.to_encoded_point(false);
    address_of_uncompressed(point.as_bytes())
}

/// The address of an uncompressed SEC1 point (`0x04 || x || y`).
fn address_of_uncompressed(point: &[u8]) -> String {
    let hash = Keccak256::digest(&point[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

/// Checks an Ed25519ph-with-context installation signature over `text`; inside
/// [`deferring`](crate::ed25519::deferring) it is recorded for a batch check instead (after
/// the length checks).
pub fn verify_installation(
    text: &str,
    sig: &[u8],
    public_key: &[u8],
) -> Result<(), AssociationError> {
    let key: [u8; 32] = public_key
        .try_into()
        .map_err(|_| AssociationError::MalformedSignature("installation key must be 32 bytes"))?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| {
        AssociationError::MalformedSignature("installation signature must be 64 bytes")
    })?;
    let mut prehash = Sha512::new();
    prehash.update(text.as_bytes());
    // Whether the key is a curve point is left to the batch too: a batch that fails is done
    // again one by one, which then gives the precise error.
    let deferred = crate::ed25519::record(|| {
        let digest = prehash.clone().finalize().into();
        DeferredSignature::prehashed(digest, INSTALLATION_SIGNATURE_CONTEXT, public_key, &sig)
    });
    if deferred {
        return Ok(());
    }
    let key = VerifyingKey::from_bytes(&key).map_err(|_| {
        AssociationError::MalformedSignature("installation key is not a curve point")
    })?;
    key.verify_prehashed(
        prehash,
        Some(INSTALLATION_SIGNATURE_CONTEXT),
        &EdSignature::from_bytes(&sig),
    )
    .map_err(|_| AssociationError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::associations::sign::{sign_erc191, sign_installation};

    fn wallet() -> k256::ecdsa::SigningKey {
        k256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
    }

    #[test]
    fn erc191_round_trips_with_both_v_conventions() {
        let key = wallet();
        let addr = eth_address(key.verifying_key());
        let mut sig = sign_erc191(&key, "hello");
        assert_eq!(recover_erc191("hello", &sig).unwrap(), addr);
        sig[64] -= 27;
        assert_eq!(recover_erc191("hello", &sig).unwrap(), addr);
        assert_ne!(recover_erc191("hellO", &sig).unwrap(), addr);
    }

    #[test]
    fn erc191_accepts_high_s() {
        let key = wallet();
        let addr = eth_address(key.verifying_key());
        let sig = sign_erc191(&key, "text");
        // Flip to the high-s twin: s' = n - s, parity flips.
        let parsed = EcdsaSignature::from_slice(&sig[..64]).unwrap();
        let s_high = -*parsed.s();
        let high = EcdsaSignature::from_scalars(parsed.r().to_bytes(), s_high.to_bytes()).unwrap();
        let mut bytes = high.to_bytes().to_vec();
        bytes.push(if sig[64] == 27 { 28 } else { 27 });
        assert_eq!(recover_erc191("text", &bytes).unwrap(), addr);
    }

    #[test]
    fn recovery_agrees_with_k256() {
        use rand_core::{OsRng, RngCore};
        for i in 0..64 {
            let key = k256::ecdsa::SigningKey::random(&mut OsRng);
            let text = format!("message {i} {}", OsRng.next_u64());
            let sig = sign_erc191(&key, &text);
            let parsed = EcdsaSignature::from_slice(&sig[..64]).unwrap();
            let recid = RecoveryId::from_byte(sig[64] - 27).unwrap();
            let k256_key =
                EcdsaKey::recover_from_prehash(&erc191_hash(&text), &parsed, recid).unwrap();
            assert_eq!(recover_erc191(&text, &sig).unwrap(), eth_address(&k256_key));
            assert_eq!(
                recover_erc191(&text, &sig).unwrap(),
                eth_address(key.verifying_key())
            );
        }
        // r = 0 is not a signature.
        let mut zero = [0u8; 65];
        zero[33] = 1;
        zero[64] = 27;
        assert!(recover_erc191("x", &zero).is_err());
    }

    #[test]
    fn known_address_of_private_key_one() {
        let key = k256::ecdsa::SigningKey::from_bytes(&{
            let mut b = [0u8; 32];
            b[31] = 1;
            b.into()
        })
        .unwrap();
        assert_eq!(
            eth_address(key.verifying_key()),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }

    #[test]
    fn installation_signature_needs_the_context() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let sig = sign_installation(&key, "text");
        let pk = key.verifying_key().to_bytes();
        verify_installation("text", &sig, &pk).unwrap();
        assert_eq!(
            verify_installation("txet", &sig, &pk),
            Err(AssociationError::BadSignature)
        );
        use ed25519_dalek::Signer;
        let plain = key.sign(b"text").to_bytes();
        assert_eq!(
            verify_installation("text", &plain, &pk),
            Err(AssociationError::BadSignature)
        );
    }
}
