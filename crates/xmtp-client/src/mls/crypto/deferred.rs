//! Ed25519 signatures checked together instead of one at a time.
//!
//! openmls verifies a key package's two signatures (its leaf node's and its own) one by one
//! with ed25519-dalek's `verify_strict`, ~36 µs each on this project's 2-core bench machine,
//! ~14% of a first-contact broadcast's CPU. A batch of DMs validates a thousand key packages at
//! once, and ed25519-dalek's `verify_batch` (one multiscalar multiplication over all of them)
//! checks them for ~15 µs a signature.
//!
//! [`deferring`] runs a closure during which [`XmtpCrypto`](super::XmtpCrypto) records every
//! Ed25519 verification it is asked for and answers "valid"; whatever the closure concluded
//! stays provisional until [`verify_all`] accepts every recorded signature. A failed batch
//! only says that some signature is bad, so the caller then validates each item again with
//! real verification (the cost of doing it one by one, as before).
//!
//! What the batch accepts is what `verify_strict` accepts: keys and `R` points of small order
//! and non-canonical `R` encodings are refused up front (as `verify_strict` does), `s` must be
//! canonical (the same parser), and a random linear combination of the equations fails for
//! any invalid signature except with probability 2^-128. The one known difference: a signer
//! can make a signature off by a torsion point, which a cofactorless batch accepts one time in
//! eight; only the key's owner can make one, about its own key package.

use std::cell::RefCell;

use ed25519_dalek::{Signature, VerifyingKey};

/// One Ed25519 verification recorded by [`deferring`].
#[derive(Debug, Clone)]
pub struct DeferredSignature {
    message: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

thread_local! {
    /// The verifications recorded on this thread while a [`deferring`] closure runs.
    static RECORDED: RefCell<Option<Vec<DeferredSignature>>> = const { RefCell::new(None) };
}

/// Records an Ed25519 verification if a [`deferring`] closure is running on this thread;
/// returns whether it did (if not, the caller verifies now).
pub(super) fn record(message: &[u8], public_key: &[u8], signature: &[u8]) -> bool {
    RECORDED.with(|recorded| match recorded.borrow_mut().as_mut() {
        Some(list) => {
            list.push(DeferredSignature {
                message: message.to_vec(),
                public_key: public_key.to_vec(),
                signature: signature.to_vec(),
            });
            true
        }
        None => false,
    })
}

/// Restores the recording state a [`deferring`] call found, also when its closure panics.
struct Restore(Option<Vec<DeferredSignature>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        RECORDED.with(|recorded| *recorded.borrow_mut() = outer);
    }
}

/// Runs `f` with this thread's Ed25519 verifications recorded instead of performed; returns
/// its result (provisional: see the module documentation) and the recorded verifications.
pub fn deferring<R>(f: impl FnOnce() -> R) -> (R, Vec<DeferredSignature>) {
    let outer = RECORDED.with(|recorded| recorded.borrow_mut().replace(Vec::new()));
    let restore = Restore(outer);
    let out = f();
    let list = RECORDED.with(|recorded| recorded.borrow_mut().take().unwrap_or_default());
    drop(restore);
    (out, list)
}

/// Whether every signature is valid, checked as one batch. `false` means at least one is not
/// (or is malformed): check them one by one to learn which.
pub fn verify_all(signatures: &[DeferredSignature]) -> bool {
    if signatures.is_empty() {
        return true;
    }
    let mut keys = Vec::with_capacity(signatures.len());
    let mut sigs = Vec::with_capacity(signatures.len());
    // Consecutive signatures often share a key (a key package and its leaf node): parse once.
    let mut last: Option<([u8; 32], VerifyingKey)> = None;
    for d in signatures {
        let Ok(bytes) = <[u8; 32]>::try_from(d.public_key.as_slice()) else {
            return false;
        };
        let key = match last {
            Some((b, key)) if b == bytes => key,
            _ => match VerifyingKey::from_bytes(&bytes) {
                Ok(key) if !key.is_weak() => {
                    last = Some((bytes, key));
                    key
                }
                _ => return false,
            },
        };
        let Ok(sig) = Signature::from_slice(&d.signature) else {
            return false;
        };
        if !acceptable_r(sig.r_bytes()) {
            return false;
        }
        keys.push(key);
        sigs.push(sig);
    }
    let messages: Vec<&[u8]> = signatures.iter().map(|d| d.message.as_slice()).collect();
    ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok()
}

/// `verify_strict`'s conditions on `R`: a canonical encoding of a curve point not of small
/// order (`verify_strict` compares its recomputed, canonical `R` with the signature's bytes).
fn acceptable_r(r: &[u8; 32]) -> bool {
    canonical_y(r) && VerifyingKey::from_bytes(r).is_ok_and(|point| !point.is_weak())
}

/// Whether an encoded point's y coordinate (the low 255 bits, little-endian) is below
/// p = 2^255 - 19. The other non-canonical encodings (x = 0 with the sign bit set) are points
/// of small order, refused anyway.
fn canonical_y(encoded: &[u8; 32]) -> bool {
    let at_least_p = encoded[0] >= 0xed
        && encoded[1..31].iter().all(|&b| b == 0xff)
        && encoded[31] & 0x7f == 0x7f;
    !at_least_p
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn signed(key: &SigningKey, message: &[u8]) -> DeferredSignature {
        DeferredSignature {
            message: message.to_vec(),
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(message).to_bytes().to_vec(),
        }
    }

    fn keys(n: u8) -> Vec<SigningKey> {
        (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
    }

    #[test]
    fn a_batch_of_good_signatures_passes_and_one_bad_one_fails_it() {
        let keys = keys(20);
        let mut batch: Vec<DeferredSignature> = keys
            .iter()
            .flat_map(|k| [signed(k, b"leaf node"), signed(k, b"key package")])
            .collect();
        assert!(verify_all(&batch));
        assert!(verify_all(&[]));
        // A signature over other bytes, a flipped bit, a wrong key, a truncated signature.
        let mut other = batch.clone();
        other[7].message = b"something else".to_vec();
        assert!(!verify_all(&other));
        let mut flipped = batch.clone();
        flipped[30].signature[40] ^= 1;
        assert!(!verify_all(&flipped));
        let mut wrong_key = batch.clone();
        wrong_key[3].public_key = keys[5].verifying_key().to_bytes().to_vec();
        assert!(!verify_all(&wrong_key));
        batch[0].signature.pop();
        assert!(!verify_all(&batch));
    }

    #[test]
    fn small_order_and_non_canonical_points_are_refused_like_verify_strict() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let good = signed(&key, b"m");
        // The identity point (y = 1) as the key, then as R.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut weak_key = good.clone();
        weak_key.public_key = identity.to_vec();
        assert!(!verify_all(&[weak_key]));
        let mut weak_r = good.clone();
        weak_r.signature[..32].copy_from_slice(&identity);
        assert!(!verify_all(&[weak_r]));
        // y = p + 1 encodes the identity non-canonically; y = 2^255 - 1 is out of range.
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert!(!canonical_y(&p_plus_1));
        assert!(!canonical_y(&[0xff; 32]));
        let mut p_minus_1 = p_plus_1;
        p_minus_1[0] = 0xec;
        assert!(canonical_y(&p_minus_1));
        assert!(canonical_y(&identity));
        // A non-canonical s (s + l) is refused, as verify_strict's parser does.
        let sig = Signature::from_slice(&good.signature).unwrap();
        assert!(key.verifying_key().verify_strict(b"m", &sig).is_ok());
        let mut s_plus_l = good.clone();
        add_group_order(&mut s_plus_l.signature[32..]);
        let bad = Signature::from_slice(&s_plus_l.signature).unwrap();
        assert!(key.verifying_key().verify_strict(b"m", &bad).is_err());
        assert!(!verify_all(&[s_plus_l]));
        assert!(verify_all(&[good]));
    }

    /// Adds the group order l = 2^252 + 27742317777372353535851937790883648493 to a
    /// little-endian scalar (a signature's `s`, which stays below 2^256).
    fn add_group_order(s: &mut [u8]) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, l) in s.iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
    }

    #[test]
    fn deferring_records_only_inside_and_nests() {
        assert!(!record(b"m", b"k", b"s"));
        let ((inner, n_inner), outer) = deferring(|| {
            assert!(record(b"a", b"k", b"s"));
            let ((), inner) = deferring(|| {
                assert!(record(b"b", b"k", b"s"));
            });
            assert!(record(b"c", b"k", b"s"));
            (inner, 1)
        });
        assert_eq!(n_inner, 1);
        assert_eq!(inner.len(), 1);
        assert_eq!(outer.len(), 2);
        assert!(!record(b"m", b"k", b"s"));
    }
}
