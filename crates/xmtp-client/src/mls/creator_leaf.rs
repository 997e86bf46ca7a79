//! [`CreatorLeaf`]: the leaf a client's new DMs share while it is current.
//!
//! Building a group gives its creator a leaf: a fresh HPKE encryption key pair (an X25519 key
//! generation with its HKDF) and the leaf node signed by the installation key (an Ed25519
//! signature over ~400 bytes), ~18 µs of the ~400 µs a first-contact DM costs. The creator's
//! leaf is `key_package`-sourced (RFC 9420 §7.2): its signature covers neither the group id nor
//! the leaf index, only the key, credential, capabilities, lifetime and extensions, which are
//! the same for every DM one client creates. So DMs created while a [`CreatorLeaf`] is current
//! start with the same leaf: the same key pair, the same lifetime and (Ed25519 being
//! deterministic) the same signature, computed once.
//!
//! This is what XMTP installations do with their own leaves anyway: a libxmtp installation's
//! last-resort key package (ours too, [`build_key_package`](super::keypackage::build_key_package))
//! puts the same leaf encryption key into every group it is welcomed to. The key is only ever
//! used by a peer to encrypt an update path's secret to us, and under the pure-ciphertext wire
//! format that ciphertext travels inside a group's `PrivateMessage`, readable only by holders
//! of that group's epoch secrets. Each group keeps its own copy of the key pair among its epoch
//! key pairs (group-scoped storage), so a group whose own leaf later changes deletes only its
//! own copy. The pair is replaced after [`ROTATE_AFTER_USES`] DMs or [`ROTATE_AFTER`], so one
//! key serves a bounded set of DMs.
//!
//! openmls derives the leaf key itself, so the build runs inside [`with_next_key_pair`], whose
//! pair [`XmtpCrypto`]'s next derivation on that thread returns, and signs through
//! [`LeafSigner`], which answers a leaf node it signed before with the same signature.

use std::cell::RefCell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openmls::prelude::Lifetime;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::random::OpenMlsRand;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::{CryptoError, HpkeKeyPair, SignatureScheme};

use super::crypto::XmtpCrypto;
use super::keypackage::CIPHERSUITE;
use super::signer::InstallationKey;

/// DMs that share one creator leaf at most.
pub const ROTATE_AFTER_USES: u32 = 10_000;
/// Age after which a creator leaf is replaced.
pub const ROTATE_AFTER: Duration = Duration::from_secs(3600);

/// The creator leaf of a client's new DMs (see the module documentation). Shared by the
/// threads that build DMs in parallel.
#[derive(Default)]
pub struct CreatorLeaf {
    current: Mutex<Option<Current>>,
}

struct Current {
    key_pair: HpkeKeyPair,
    lifetime: Lifetime,
    born: Instant,
    uses: u32,
    /// The last leaf node signed for it: to-be-signed bytes and signature.
    signed: Option<(Vec<u8>, Vec<u8>)>,
}

/// What one DM's creation takes from a [`CreatorLeaf`].
pub(crate) struct Lease {
    pub key_pair: HpkeKeyPair,
    pub lifetime: Lifetime,
}

impl CreatorLeaf {
    /// The current key pair and lifetime for one more DM, after replacing them if they served
    /// [`ROTATE_AFTER_USES`] DMs or are older than [`ROTATE_AFTER`].
    pub(crate) fn lease(&self, crypto: &XmtpCrypto) -> Result<Lease, CryptoError> {
        let mut current = self.current.lock().expect("creator leaf lock");
        let stale = current
            .as_ref()
            .is_none_or(|c| c.uses >= ROTATE_AFTER_USES || c.born.elapsed() >= ROTATE_AFTER);
        if stale {
            let ikm = crypto
                .rust()
                .random_vec(CIPHERSUITE.hash_length())
                .map_err(|_| CryptoError::InsufficientRandomness)?;
            *current = Some(Current {
                key_pair: crypto.derive_hpke_keypair(CIPHERSUITE.hpke_config(), &ikm)?,
                lifetime: Lifetime::default(),
                born: Instant::now(),
                uses: 0,
                signed: None,
            });
        }
        let current = current.as_mut().expect("set above");
        current.uses += 1;
        Ok(Lease {
            key_pair: current.key_pair.clone(),
            lifetime: current.lifetime,
        })
    }

    /// The public key of the current pair, if any (tests).
    pub fn current_public_key(&self) -> Option<Vec<u8>> {
        let current = self.current.lock().expect("creator leaf lock");
        current.as_ref().map(|c| c.key_pair.public.clone())
    }

    /// Ends the current pair's term: the next DM gets a new one (tests; the age check).
    pub fn expire(&self) {
        if let Some(c) = self.current.lock().expect("creator leaf lock").as_mut() {
            c.uses = ROTATE_AFTER_USES;
        }
    }

    fn cached_signature(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let current = self.current.lock().expect("creator leaf lock");
        let (signed, signature) = current.as_ref()?.signed.as_ref()?;
        (signed.as_slice() == payload).then(|| signature.clone())
    }

    fn remember_signature(&self, payload: &[u8], signature: &[u8]) {
        if let Some(c) = self.current.lock().expect("creator leaf lock").as_mut() {
            c.signed = Some((payload.to_vec(), signature.to_vec()));
        }
    }
}

impl std::fmt::Debug for CreatorLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.lock().expect("creator leaf lock");
        f.debug_struct("CreatorLeaf")
            .field(
                "public_key",
                &current.as_ref().map(|c| hex::encode(&c.key_pair.public)),
            )
            .field("uses", &current.as_ref().map(|c| c.uses))
            .finish_non_exhaustive()
    }
}

/// The installation key signing a new group's leaf node: a payload signed before for the
/// current creator leaf gets the same (deterministic Ed25519) signature back without signing
/// again.
pub(crate) struct LeafSigner<'a> {
    pub key: &'a InstallationKey,
    pub leaf: &'a CreatorLeaf,
}

impl Signer for LeafSigner<'_> {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        if let Some(signature) = self.leaf.cached_signature(payload) {
            return Ok(signature);
        }
        let signature = self.key.sign(payload)?;
        self.leaf.remember_signature(payload, &signature);
        Ok(signature)
    }

    fn signature_scheme(&self) -> SignatureScheme {
        self.key.signature_scheme()
    }
}

thread_local! {
    /// The key pair the next HPKE key pair derivation on this thread returns
    /// ([`with_next_key_pair`]).
    static NEXT_KEY_PAIR: RefCell<Option<HpkeKeyPair>> = const { RefCell::new(None) };
}

/// Runs `f` with the first HPKE key pair derivation it makes on this thread through
/// [`XmtpCrypto`] answered with `key_pair` (building a group derives exactly one: its creator's
/// leaf key). A pair left unused is dropped when `f` returns or unwinds.
pub(crate) fn with_next_key_pair<R>(key_pair: HpkeKeyPair, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            NEXT_KEY_PAIR.with(|next| next.borrow_mut().take());
        }
    }
    NEXT_KEY_PAIR.with(|next| *next.borrow_mut() = Some(key_pair));
    let _clear = Clear;
    f()
}

/// The pair [`with_next_key_pair`] set for this thread, taken (for [`XmtpCrypto`]).
pub(crate) fn take_next_key_pair() -> Option<HpkeKeyPair> {
    NEXT_KEY_PAIR.with(|next| next.borrow_mut().take())
}

#[cfg(test)]
#[path = "creator_leaf_tests.rs"]
mod tests;
