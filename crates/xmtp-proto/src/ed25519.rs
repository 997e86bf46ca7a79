//! Ed25519 signatures checked together instead of one at a time.
//!
//! A first-contact broadcast checks three Ed25519 signatures per new peer, all by the peer's
//! installation key: its key package's two (pure Ed25519, inside openmls) and its identity
//! update's (Ed25519ph). One by one each costs ~25-36 µs on the project's 2-core bench
//! machine (~12% of a first contact's CPU together); a thousand of them checked as one random
//! linear combination (one multiscalar multiplication) cost a fraction of that, less still
//! when signatures by the same key share its term.
//!
//! [`deferring`] runs a closure during which the verifications that support it (openmls's
//! Ed25519 through the client's crypto provider, [`verify_installation`]
//! (crate::associations::verify::verify_installation)) are recorded and answered "valid";
//! whatever the closure concluded stays provisional until [`verify_all`] accepts every
//! recorded signature. A failed batch only says that some signature is bad, so the caller
//! then does the work again with real verification (the cost of doing it one by one).
//!
//! What the batch accepts is what ed25519-dalek's `verify_strict` accepts: keys and `R`
//! points of small order and non-canonical `R` encodings are refused up front, `s` must be
//! canonical, and a random linear combination of the equations fails for any invalid
//! signature except with probability 2^-128. The one known difference: a signer can make a
//! signature off by a torsion point, which a cofactorless batch accepts one time in eight;
//! only the key's owner can make one, about its own key package or identity update.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::Rng;
use sha2::{Digest, Sha512};

/// What a recorded signature signs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Signed {
    /// Plain Ed25519 over these bytes.
    Message(Vec<u8>),
    /// Ed25519ph (RFC 8032) with a context: the SHA-512 of the message.
    Prehashed { context: Vec<u8>, digest: [u8; 64] },
}

/// One Ed25519 verification recorded by [`deferring`].
#[derive(Debug, Clone)]
pub struct DeferredSignature {
    signed: Signed,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

impl DeferredSignature {
    /// A plain Ed25519 signature over `message`.
    pub fn new(message: &[u8], public_key: &[u8], signature: &[u8]) -> Self {
        Self {
            signed: Signed::Message(message.to_vec()),
            public_key: public_key.to_vec(),
            signature: signature.to_vec(),
        }
    }

    /// An Ed25519ph signature with `context` over the message whose SHA-512 is `digest`.
    ///
    /// # Panics
    /// If `context` is longer than RFC 8032's 255 bytes (verifiers refuse such a context
    /// before they get here).
    pub fn prehashed(
        digest: [u8; 64],
        context: &[u8],
        public_key: &[u8],
        signature: &[u8],
    ) -> Self {
        assert!(
            context.len() <= 255,
            "an Ed25519ph context is at most 255 bytes"
        );
        Self {
            signed: Signed::Prehashed {
                context: context.to_vec(),
                digest,
            },
            public_key: public_key.to_vec(),
            signature: signature.to_vec(),
        }
    }

    /// The challenge `H(dom2 || R || A || M)` of RFC 8032 (dom2 only for Ed25519ph).
    fn challenge(&self, r: &[u8], a: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        match &self.signed {
            Signed::Message(message) => {
                h.update(r);
                h.update(a);
                h.update(message);
            }
            Signed::Prehashed { context, digest } => {
                h.update(b"SigEd25519 no Ed25519 collisions");
                // Ed25519ph's flag and the context's length (at most 255: `prehashed`).
                h.update([1, context.len() as u8]);
                h.update(context);
                h.update(r);
                h.update(a);
                h.update(digest);
            }
        }
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }
}

thread_local! {
    /// The verifications recorded on this thread while a [`deferring`] closure runs.
    static RECORDED: RefCell<Option<Vec<DeferredSignature>>> = const { RefCell::new(None) };
}

/// Records a verification if a [`deferring`] closure is running on this thread; returns
/// whether it did (if not, the caller verifies now). `make` is called only when it does.
pub fn record(make: impl FnOnce() -> DeferredSignature) -> bool {
    RECORDED.with(|recorded| match recorded.borrow_mut().as_mut() {
        Some(list) => {
            list.push(make());
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

/// Runs the same verifications immediately inside `f`, even within a [`deferring`] closure.
fn immediately<R>(f: impl FnOnce() -> R) -> R {
    let outer = RECORDED.with(|recorded| recorded.borrow_mut().take());
    let _restore = Restore(outer);
    f()
}

/// `items.iter().map(f)` with the Ed25519 verifications of every item checked as one batch.
///
/// Each item's `f` runs under [`deferring`]; if the batch of all recorded signatures fails,
/// halves of it are checked until the items whose own signatures fail are found, and only
/// those run `f` again with real verification (so their result is exactly what one-by-one
/// verification gives). One bad signature among n items costs ~2n batched checks more, not
/// every item's work again (a new peer's identity includes a ~30 µs secp256k1 recovery).
pub fn batched<T, R>(items: &[T], f: impl Fn(&T) -> R) -> Vec<R> {
    let mut results = Vec::with_capacity(items.len());
    let mut signatures = Vec::new();
    // Where each item's signatures start in `signatures`, and one past the last.
    let mut starts = Vec::with_capacity(items.len() + 1);
    for item in items {
        starts.push(signatures.len());
        let (result, recorded) = deferring(|| f(item));
        signatures.extend(recorded);
        results.push(result);
    }
    starts.push(signatures.len());
    let mut bad = Vec::new();
    find_failing(&signatures, &starts, 0..items.len(), &mut bad);
    for i in bad {
        results[i] = immediately(|| f(&items[i]));
    }
    results
}

/// Adds to `bad` the items in `range` whose signatures (`signatures[starts[i]..starts[i + 1]]`)
/// are not all valid, halving the range while its batch fails.
fn find_failing(
    signatures: &[DeferredSignature],
    starts: &[usize],
    range: std::ops::Range<usize>,
    bad: &mut Vec<usize>,
) {
    if range.is_empty() || verify_all(&signatures[starts[range.start]..starts[range.end]]) {
        return;
    }
    if range.len() == 1 {
        bad.push(range.start);
        return;
    }
    let middle = range.start + range.len() / 2;
    find_failing(signatures, starts, range.start..middle, bad);
    find_failing(signatures, starts, middle..range.end, bad);
}

/// Whether every signature is valid, checked as one batch. `false` means at least one is not
/// (or is malformed): check them one by one to learn which.
///
/// The check is `-(Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢkᵢ)·Aᵢ = 0` with a random 128-bit `zᵢ` per
/// signature and `kᵢ` its challenge; the terms of one key are added into one.
pub fn verify_all(signatures: &[DeferredSignature]) -> bool {
    if signatures.is_empty() {
        return true;
    }
    let mut rng = rand::thread_rng();
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(signatures.len() + 1);
    let mut points = Vec::with_capacity(signatures.len() + 1);
    // Each distinct key: its point and the sum of its signatures' zᵢkᵢ.
    let mut keys: HashMap<[u8; 32], usize> = HashMap::new();
    let mut key_terms: Vec<(EdwardsPoint, Scalar)> = Vec::new();
    for d in signatures {
        let (Ok(a), Ok(sig)) = (
            <[u8; 32]>::try_from(d.public_key.as_slice()),
            <[u8; 64]>::try_from(d.signature.as_slice()),
        ) else {
            return false;
        };
        let r: [u8; 32] = sig[..32].try_into().expect("32 of 64 bytes");
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(
            sig[32..].try_into().expect("32 of 64 bytes"),
        )) else {
            return false;
        };
        let Some(r_point) = acceptable_point(&r, true) else {
            return false;
        };
        let index = match keys.get(&a) {
            Some(&index) => index,
            None => {
                let Some(a_point) = acceptable_point(&a, false) else {
                    return false;
                };
                key_terms.push((a_point, Scalar::ZERO));
                keys.insert(a, key_terms.len() - 1);
                key_terms.len() - 1
            }
        };
        let z = Scalar::from(rng.gen::<u128>());
        b_coefficient += z * s;
        key_terms[index].1 += z * d.challenge(&r, &a);
        scalars.push(z);
        points.push(r_point);
    }
    scalars.push(-b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    for (point, scalar) in key_terms {
        scalars.push(scalar);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// The point an encoding names if `verify_strict` would take it as a key (`canonical` false)
/// or as a signature's `R` (`canonical` true: it compares its recomputed, canonical `R` with
/// the signature's bytes): a curve point not of small order.
fn acceptable_point(encoded: &[u8; 32], canonical: bool) -> Option<EdwardsPoint> {
    if canonical && !canonical_y(encoded) {
        return None;
    }
    let point = CompressedEdwardsY(*encoded).decompress()?;
    (!point.is_small_order()).then_some(point)
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
#[path = "ed25519_tests.rs"]
mod tests;
