//! DMs sharing a creator leaf: each one works on its own, also after a peer's or our own key
//! update in another; the leaf is replaced after its term; the signer's memo is exact.

use std::collections::HashMap;

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::MlsGroup;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::OpenMlsProvider as _;

use super::*;
use crate::mls::content::{decode_envelope, encode_text, envelope};
use crate::mls::dm::{
    create_dm, create_dm_sharing_leaf, encrypt, join, merge_creation, process,
    validate_key_package, Incoming,
};
use crate::mls::group_ext::DmSpec;
use crate::mls::provider::XmtpProvider;
use crate::mls::test_support::{party, published_kp, restarted, Party};
use crate::mls::welcome::{unwrap_welcome, wrap_welcome};

/// A DM `alice` creates with `peer` (sharing `leaf` if given), and the peer's joined copy.
fn dm(alice: &Party, leaf: Option<&CreatorLeaf>, peer: &Party) -> (MlsGroup, MlsGroup) {
    let (kp_bytes, init_sk) = published_kp(peer);
    let kp = validate_key_package(
        &alice.provider,
        &kp_bytes,
        &peer.key.public_key(),
        &peer.inbox,
    )
    .unwrap();
    let spec = DmSpec {
        creator_inbox_id: alice.inbox.clone(),
        peer_inbox_id: peer.inbox.clone(),
        membership: HashMap::from([(alice.inbox.clone(), 1), (peer.inbox.clone(), 1)]),
        failed_installations: vec![],
    };
    let kps = std::slice::from_ref(&kp);
    let (mut group, out) = match leaf {
        Some(leaf) => {
            create_dm_sharing_leaf(&alice.provider, &alice.key, leaf, &spec, kps).unwrap()
        }
        None => create_dm(&alice.provider, &alice.key, &spec, kps).unwrap(),
    };
    merge_creation(&alice.provider, &mut group).unwrap();
    let wrapped = wrap_welcome(&out.welcome, b"", kp.hpke_init_key().as_slice()).unwrap();
    let (welcome, _) = unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, &init_sk).unwrap();
    // Joining checks the tree, our leaf's signature included.
    (group, join(&peer.provider, &welcome).unwrap())
}

fn own_leaf(group: &MlsGroup) -> Vec<u8> {
    group
        .own_leaf_node()
        .unwrap()
        .tls_serialize_detached()
        .unwrap()
}

/// `from` sends `text` in its copy, `to` reads it in its own.
fn deliver(
    from: (&XmtpProvider, &Party, &mut MlsGroup),
    to: (&XmtpProvider, &mut MlsGroup),
    text: &str,
) {
    let (provider, sender, group) = from;
    let ct = encrypt(
        provider,
        &sender.key,
        group,
        &envelope(encode_text(text), text),
    )
    .unwrap();
    let Incoming::Application { payload, .. } = process(to.0, to.1, &ct).unwrap() else {
        panic!("not an application message")
    };
    assert_eq!(
        decode_envelope(&payload).unwrap().text.as_deref(),
        Some(text)
    );
}

/// `member` key-updates its copy (a commit with a path encrypted to the other leaf), and the
/// other side merges it.
fn key_update(member: &Party, group: &mut MlsGroup, other: (&XmtpProvider, &mut MlsGroup)) {
    let bundle = group
        .self_update(&member.provider, &member.key, Default::default())
        .unwrap();
    let commit = bundle.commit().tls_serialize_detached().unwrap();
    group.merge_pending_commit(&member.provider).unwrap();
    assert!(matches!(
        process(other.0, other.1, &commit).unwrap(),
        Incoming::CommitMerged
    ));
}

#[test]
fn dms_created_while_a_leaf_is_current_share_it_and_each_works_alone() {
    let (alice, bob, carol) = (party('a'), party('b'), party('c'));
    let leaf = CreatorLeaf::default();
    let (mut with_bob, mut bobs) = dm(&alice, Some(&leaf), &bob);
    let (mut with_carol, mut carols) = dm(&alice, Some(&leaf), &carol);
    assert_eq!(own_leaf(&with_bob), own_leaf(&with_carol));
    let (fresh, _) = dm(&alice, None, &party('d'));
    assert_ne!(own_leaf(&fresh), own_leaf(&with_bob));

    // The peers key-update as libxmtp does after joining: the path secret is encrypted to the
    // shared leaf key, which each group holds among its own epoch key pairs.
    key_update(&bob, &mut bobs, (&alice.provider, &mut with_bob));
    key_update(&carol, &mut carols, (&alice.provider, &mut with_carol));
    deliver(
        (&alice.provider, &alice, &mut with_bob),
        (&bob.provider, &mut bobs),
        "to bob",
    );
    deliver(
        (&carol.provider, &carol, &mut carols),
        (&alice.provider, &mut with_carol),
        "from carol",
    );

    // Our own key update in one DM replaces (and deletes) that group's copy only.
    key_update(&alice, &mut with_bob, (&bob.provider, &mut bobs));
    assert_ne!(own_leaf(&with_bob), own_leaf(&with_carol));
    // The other DM, reloaded from what was written, still opens a path sent to the shared key.
    let (restarted, mut reloaded) = restarted(&alice, with_carol.group_id());
    key_update(&carol, &mut carols, (&restarted, &mut reloaded));
    deliver(
        (&restarted, &alice, &mut reloaded),
        (&carol.provider, &mut carols),
        "to carol",
    );
    deliver(
        (&bob.provider, &bob, &mut bobs),
        (&alice.provider, &mut with_bob),
        "from bob",
    );
}

#[test]
fn the_leaf_is_replaced_after_its_uses_or_when_expired() {
    let provider = XmtpProvider::new();
    let leaf = CreatorLeaf::default();
    assert!(leaf.current_public_key().is_none());
    let first = leaf.lease(provider.crypto()).unwrap().key_pair.public;
    for _ in 1..ROTATE_AFTER_USES {
        assert_eq!(
            leaf.lease(provider.crypto()).unwrap().key_pair.public,
            first
        );
    }
    let second = leaf.lease(provider.crypto()).unwrap();
    assert_ne!(second.key_pair.public, first);
    assert_eq!(
        leaf.current_public_key(),
        Some(second.key_pair.public.clone())
    );
    leaf.expire();
    assert_ne!(
        leaf.lease(provider.crypto()).unwrap().key_pair.public,
        second.key_pair.public
    );
    // The private key stays out of Debug output.
    let private = hex::encode(second.key_pair.private.as_ref());
    assert!(!format!("{leaf:?}").contains(&private));
}

#[test]
fn the_leaf_signer_gives_exactly_the_installation_key_signatures() {
    let provider = XmtpProvider::new();
    let key = InstallationKey::generate();
    let leaf = CreatorLeaf::default();
    let signer = LeafSigner {
        key: &key,
        leaf: &leaf,
    };
    // Without a current leaf nothing is remembered, and signatures are still right.
    assert_eq!(signer.sign(b"a").unwrap(), key.sign(b"a").unwrap());
    leaf.lease(provider.crypto()).unwrap();
    for payload in [&b"a"[..], b"a", b"b", b"a", b""] {
        assert_eq!(signer.sign(payload).unwrap(), key.sign(payload).unwrap());
    }
    assert_eq!(signer.signature_scheme(), key.signature_scheme());
}

#[test]
fn the_next_key_pair_answers_one_derivation_on_its_thread_only() {
    let provider = XmtpProvider::new();
    let config = || crate::mls::keypackage::CIPHERSUITE.hpke_config();
    let derive = || {
        provider
            .crypto()
            .derive_hpke_keypair(config(), &[7; 32])
            .unwrap()
    };
    let preset = derive_for_test(&provider);
    let (first, second, elsewhere) = with_next_key_pair(preset.clone(), || {
        let elsewhere = std::thread::scope(|s| s.spawn(take_next_key_pair).join().unwrap());
        (derive(), derive(), elsewhere)
    });
    assert_eq!(first.public, preset.public);
    assert_eq!(
        second.public,
        derive().public,
        "the second derivation is the real one"
    );
    assert!(elsewhere.is_none(), "another thread does not see it");
    // Unused, it is gone when the closure returns (or unwinds).
    with_next_key_pair(preset.clone(), || ());
    assert_ne!(derive().public, preset.public);
    let _ = std::panic::catch_unwind(|| with_next_key_pair(preset.clone(), || panic!("x")));
    assert!(take_next_key_pair().is_none());
}

fn derive_for_test(provider: &XmtpProvider) -> HpkeKeyPair {
    let leaf = CreatorLeaf::default();
    leaf.lease(provider.crypto()).unwrap().key_pair
}
