//! Offline DM round trip: create, welcome, messages both ways, peer commit, new installation.

use super::*;
use crate::mls::content::{decode_envelope, encode_text, envelope};
use crate::mls::group_ext::{read_membership, read_metadata};
use crate::mls::test_support::{party, published_kp, restarted, Party};
use crate::mls::welcome::{unwrap_welcome, wrap_welcome};

#[test]
fn dm_round_trip_with_peer_commit_and_new_installation() {
    let (alice, bob) = (party('a'), party('b'));
    let (kp_bytes, init_sk) = published_kp(&bob);
    let kp = validate_key_package(
        &alice.provider,
        &kp_bytes,
        &bob.key.public_key(),
        &bob.inbox,
    )
    .unwrap();
    assert!(validate_key_package(&alice.provider, &kp_bytes, &[0u8; 32], &bob.inbox).is_err());
    let spec = DmSpec {
        creator_inbox_id: alice.inbox.clone(),
        peer_inbox_id: bob.inbox.clone(),
        membership: HashMap::from([(alice.inbox.clone(), 1), (bob.inbox.clone(), 2)]),
        failed_installations: vec![],
    };
    let (mut group, out) = create_dm(
        &alice.provider,
        &alice.key,
        &spec,
        std::slice::from_ref(&kp),
    )
    .unwrap();
    merge_creation(&alice.provider, &mut group).unwrap();

    // Welcome travels HPKE-wrapped to Bob's init key.
    let wrapped = wrap_welcome(&out.welcome, b"", kp.hpke_init_key().as_slice()).unwrap();
    let (welcome, _) = unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, &init_sk).unwrap();
    let mut bob_group = join(&bob.provider, &welcome).unwrap();
    let meta = read_metadata(bob_group.extensions()).unwrap();
    assert_eq!(
        meta.dm_members.unwrap().dm_member_one.unwrap().inbox_id,
        alice.inbox
    );
    assert_eq!(
        read_membership(bob_group.extensions()).unwrap().members[&bob.inbox],
        2
    );

    // Alice -> Bob.
    let ct = encrypt(
        &alice.provider,
        &alice.key,
        &mut group,
        &envelope(encode_text("hi bob"), "k1"),
    )
    .unwrap();
    let Incoming::Application {
        payload,
        sender_inbox_id,
    } = process(&bob.provider, &mut bob_group, &ct).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        decode_envelope(&payload).unwrap().text.as_deref(),
        Some("hi bob")
    );
    assert_eq!(sender_inbox_id.as_deref(), Some(alice.inbox.as_str()));

    // Bob key-updates (as libxmtp does before its first send), then replies.
    let bundle = bob_group
        .self_update(&bob.provider, &bob.key, Default::default())
        .unwrap();
    let commit = bundle.commit().tls_serialize_detached().unwrap();
    bob_group.merge_pending_commit(&bob.provider).unwrap();
    assert!(matches!(
        process(&alice.provider, &mut group, &commit).unwrap(),
        Incoming::CommitMerged
    ));
    let reply = bob_group
        .create_message(
            &bob.provider,
            &bob.key,
            &envelope(encode_text("hi alice"), "k2"),
        )
        .unwrap();
    let Incoming::Application { payload, .. } = process(
        &alice.provider,
        &mut group,
        &reply.tls_serialize_detached().unwrap(),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        decode_envelope(&payload).unwrap().text.as_deref(),
        Some("hi alice")
    );

    // Bob gains a second installation: Alice adds it with a membership bump.
    let bob2 = Party {
        provider: XmtpProvider::new(),
        key: InstallationKey::generate(),
        inbox: bob.inbox.clone(),
    };
    let (kp2_bytes, init2) = published_kp(&bob2);
    let kp2 = validate_key_package(
        &alice.provider,
        &kp2_bytes,
        &bob2.key.public_key(),
        &bob.inbox,
    )
    .unwrap();
    let membership = HashMap::from([(alice.inbox.clone(), 1), (bob.inbox.clone(), 5)]);
    let out = update_installations(
        &alice.provider,
        &alice.key,
        &mut group,
        vec![kp2.clone()],
        vec![],
        &membership,
        &[],
    )
    .unwrap();
    merge_pending(&alice.provider, &mut group).unwrap();
    assert_eq!(member_installations(&group).len(), 3);
    assert!(matches!(
        process(&bob.provider, &mut bob_group, &out.commit).unwrap(),
        Incoming::CommitMerged
    ));
    let wrapped = wrap_welcome(&out.welcome, b"", kp2.hpke_init_key().as_slice()).unwrap();
    let (welcome, _) = unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, &init2).unwrap();
    let mut bob2_group = join(&bob2.provider, &welcome).unwrap();
    assert_eq!(
        read_membership(bob2_group.extensions()).unwrap().members[&bob.inbox],
        5
    );
    let ct = encrypt(
        &alice.provider,
        &alice.key,
        &mut group,
        &envelope(encode_text("to all"), "k3"),
    )
    .unwrap();
    for (prov, g) in [
        (&bob.provider, &mut bob_group),
        (&bob2.provider, &mut bob2_group),
    ] {
        let Incoming::Application { payload, .. } = process(prov, g, &ct).unwrap() else {
            panic!()
        };
        assert_eq!(
            decode_envelope(&payload).unwrap().text.as_deref(),
            Some("to all")
        );
    }
}

/// Bytes of the group's stored message-secrets entity.
fn message_secrets_len(p: &Party, group: &MlsGroup) -> usize {
    p.provider
        .storage()
        .raw_entity(group.group_id(), b"message_secrets/null")
        .expect("message secrets stored")
        .len()
}

#[test]
fn creation_drops_the_epoch_zero_secrets() {
    let (alice, bob) = (party('a'), party('b'));
    let (kp_bytes, _) = published_kp(&bob);
    let kp = validate_key_package(
        &alice.provider,
        &kp_bytes,
        &bob.key.public_key(),
        &bob.inbox,
    )
    .unwrap();
    let spec = DmSpec {
        creator_inbox_id: alice.inbox.clone(),
        peer_inbox_id: bob.inbox.clone(),
        membership: HashMap::from([(alice.inbox.clone(), 1), (bob.inbox.clone(), 2)]),
        failed_installations: vec![],
    };
    let mut sizes = Vec::new();
    for creation in [false, true] {
        let kps = std::slice::from_ref(&kp);
        let (mut group, _) = create_dm(&alice.provider, &alice.key, &spec, kps).unwrap();
        if creation {
            merge_creation(&alice.provider, &mut group).unwrap();
        } else {
            merge_pending(&alice.provider, &mut group).unwrap();
        }
        assert_eq!(group.epoch().as_u64(), 1);
        encrypt(&alice.provider, &alice.key, &mut group, b"x").unwrap();
        sizes.push(message_secrets_len(&alice, &group));
    }
    // Epoch 0's secret tree was as large as epoch 1's: dropping it about halves the entry
    // every send rewrites.
    assert!(sizes[1] * 5 < sizes[0] * 3, "{sizes:?}");
}

#[test]
fn a_created_dm_reloads_from_what_its_creation_wrote() {
    let (alice, bob) = (party('a'), party('b'));
    let (kp_bytes, init_sk) = published_kp(&bob);
    let kp = validate_key_package(
        &alice.provider,
        &kp_bytes,
        &bob.key.public_key(),
        &bob.inbox,
    )
    .unwrap();
    let spec = DmSpec {
        creator_inbox_id: alice.inbox.clone(),
        peer_inbox_id: bob.inbox.clone(),
        membership: HashMap::from([(alice.inbox.clone(), 1), (bob.inbox.clone(), 2)]),
        failed_installations: vec![],
    };
    let (mut group, out) = create_dm(
        &alice.provider,
        &alice.key,
        &spec,
        std::slice::from_ref(&kp),
    )
    .unwrap();
    merge_creation(&alice.provider, &mut group).unwrap();
    // A restarted sender loads the group from those entries alone and sends in epoch 1.
    let (restarted, mut reloaded) = restarted(&alice, group.group_id());
    assert_eq!(reloaded.epoch().as_u64(), 1);
    assert_eq!(reloaded.configuration(), group.configuration());
    let ct = encrypt(
        &restarted,
        &alice.key,
        &mut reloaded,
        &envelope(encode_text("after restart"), "k"),
    )
    .unwrap();
    let wrapped = wrap_welcome(&out.welcome, b"", kp.hpke_init_key().as_slice()).unwrap();
    let (welcome, _) = unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, &init_sk).unwrap();
    let mut bob_group = join(&bob.provider, &welcome).unwrap();
    let Incoming::Application { payload, .. } =
        process(&bob.provider, &mut bob_group, &ct).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        decode_envelope(&payload).unwrap().text.as_deref(),
        Some("after restart")
    );
    // And the peer's replies in epoch 1 decrypt for it.
    let reply = encrypt(&bob.provider, &bob.key, &mut bob_group, b"reply").unwrap();
    assert!(matches!(
        process(&restarted, &mut reloaded, &reply).unwrap(),
        Incoming::Application { .. }
    ));
}

#[test]
fn key_packages_validated_together_agree_with_one_by_one() {
    let alice = party('a');
    let peers: Vec<Party> = "bcdefgh".chars().map(party).collect();
    let mut packages: Vec<Vec<u8>> = peers.iter().map(|p| published_kp(p).0).collect();
    // Bad signature on the third package (the last byte is the key package's signature).
    let last = packages[2].len() - 1;
    packages[2][last] ^= 0x01;
    let keys: Vec<Vec<u8>> = peers.iter().map(|p| p.key.public_key().to_vec()).collect();
    let mut checks: Vec<KeyPackageCheck<'_>> = peers
        .iter()
        .zip(&packages)
        .zip(&keys)
        .map(|((p, bytes), key)| KeyPackageCheck {
            bytes,
            installation: key,
            inbox_id: &p.inbox,
        })
        .collect();
    // The fifth is checked for another inbox than its credential names.
    checks[4].inbox_id = &peers[0].inbox;
    let together = validate_key_packages(&alice.provider, &checks);
    let alone: Vec<bool> = checks
        .iter()
        .map(|c| validate_key_package(&alice.provider, c.bytes, c.installation, c.inbox_id).is_ok())
        .collect();
    assert_eq!(alone, [true, true, false, true, false, true, true]);
    assert_eq!(
        together.iter().map(Result::is_ok).collect::<Vec<_>>(),
        alone
    );
    // Without the bad package the batch path alone decides, with the same answers.
    checks.remove(2);
    let together = validate_key_packages(&alice.provider, &checks);
    assert_eq!(
        together.iter().map(Result::is_ok).collect::<Vec<_>>(),
        [true, true, true, false, true, true]
    );
    // What it returns are the same packages.
    let one = validate_key_package(
        &alice.provider,
        checks[0].bytes,
        checks[0].installation,
        checks[0].inbox_id,
    )
    .unwrap();
    assert_eq!(together[0].as_ref().unwrap(), &one);
}
