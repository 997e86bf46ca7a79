//! Tests of the MLS state encoding and of reloading groups from it.

use std::collections::{BTreeMap, HashMap};

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::MlsGroup;
use openmls_traits::OpenMlsProvider as _;

use super::*;
use crate::mls::dm::{create_dm, merge_pending, validate_key_package};
use crate::mls::group_ext::DmSpec;
use crate::mls::keypackage::build_key_package;
use crate::mls::provider::XmtpProvider;
use crate::mls::signer::InstallationKey;

#[test]
fn values_are_message_pack_and_earlier_json_values_still_read() {
    let storage = MlsStorage::new();
    let secret: Vec<u8> = (0..=255).collect();
    storage.put("t", &Gl(&1u8), &secret).unwrap();
    let written = storage.take_dirty();
    let bytes = written[0].1.as_ref().unwrap();
    assert_eq!(bytes[0], MSGPACK_MARK);
    let json = serde_json::to_vec(&secret).unwrap();
    assert!(
        bytes.len() * 2 < json.len(),
        "{} vs {} bytes",
        bytes.len(),
        json.len()
    );
    assert_eq!(
        storage.get::<_, Vec<u8>>("t", &Gl(&1u8)).unwrap(),
        Some(secret.clone())
    );
    assert!(
        bytes.len() < secret.len() + 8,
        "bytes stored as a bin string"
    );
    // Values earlier versions stored: JSON, and MessagePack with bytes as integer arrays.
    let old = MlsStorage::new();
    old.load([(Gl(&1u8).encode("t").unwrap(), json)]);
    assert_eq!(
        old.get::<_, Vec<u8>>("t", &Gl(&1u8)).unwrap(),
        Some(secret.clone())
    );
    let mut ints = vec![MSGPACK_MARK];
    secret
        .serialize(&mut rmp_serde::Serializer::new(&mut ints).with_struct_map())
        .unwrap();
    assert!(ints.len() > secret.len() + 100, "integer array");
    let old = MlsStorage::new();
    old.load([(Gl(&1u8).encode("t").unwrap(), ints)]);
    assert_eq!(old.get::<_, Vec<u8>>("t", &Gl(&1u8)).unwrap(), Some(secret));
}

#[test]
fn a_group_reloads_from_its_prefix_plus_global_entries() {
    group_reloads(false);
}

#[test]
fn a_group_written_with_field_names_still_reloads() {
    group_reloads(true);
}

/// A DM created by `sender` with a fresh peer, its creation commit merged; and the sender's
/// installation key.
fn new_dm(sender: &XmtpProvider) -> (MlsGroup, InstallationKey) {
    let peer = XmtpProvider::new();
    let key = InstallationKey::generate();
    let peer_key = InstallationKey::generate();
    let (me, them) = ("a".repeat(64), "b".repeat(64));
    let kp = build_key_package(&peer, &peer_key, &them).unwrap();
    let kp_bytes = kp.key_package().tls_serialize_detached().unwrap();
    let kp = validate_key_package(sender, &kp_bytes, &peer_key.public_key(), &them).unwrap();
    let spec = DmSpec {
        creator_inbox_id: me.clone(),
        peer_inbox_id: them.clone(),
        membership: HashMap::from([(me, 1), (them, 1)]),
        failed_installations: vec![],
    };
    let (mut group, _) = create_dm(sender, &key, &spec, &[kp]).unwrap();
    merge_pending(sender, &mut group).unwrap();
    (group, key)
}

fn group_reloads(named: bool) {
    let sender = if named {
        XmtpProvider::with_storage(MlsStorage::writing_field_names())
    } else {
        XmtpProvider::new()
    };
    let (group, key) = new_dm(&sender);
    let written: HashMap<Vec<u8>, Vec<u8>> = sender
        .storage()
        .take_dirty()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    assert!(
        sender.storage().take_dirty().is_empty(),
        "dirty set drained"
    );
    let prefixes = group_load_prefixes(group.group_id());
    let (own, other): (Vec<_>, Vec<_>) = written
        .into_iter()
        .partition(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)));
    assert!(
        other.iter().all(|(k, _)| k.starts_with(MLS_GLOBAL_PREFIX)),
        "no stray keys"
    );

    let secrets = own
        .iter()
        .find(|(k, _)| k.ends_with(b"/message_secrets/null"))
        .map(|(_, v)| v.len())
        .unwrap();
    assert_eq!(named, secrets > 2_800, "{secrets} bytes of message secrets");

    let provider = XmtpProvider::new();
    provider.storage().load(own.into_iter().chain(other));
    let mut reloaded = MlsGroup::load(provider.storage(), group.group_id())
        .unwrap()
        .unwrap();
    assert_eq!(reloaded.epoch(), group.epoch());
    assert_eq!(reloaded.members().count(), 2);
    // The reloaded state works: it encrypts, and what it writes back reloads too.
    reloaded
        .create_message(&provider, &key, b"after reload")
        .unwrap();
    let rewritten: Vec<_> = provider
        .storage()
        .take_dirty()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    assert!(rewritten
        .iter()
        .all(|(k, v)| v[0] == MSGPACK_MARK || k.starts_with(DELTA_PREFIX)));
    provider.storage().load(rewritten);
    let again = MlsGroup::load(provider.storage(), group.group_id())
        .unwrap()
        .unwrap();
    assert_eq!(again.epoch(), group.epoch());
}

/// MLS state of a DM as this encoding wrote it (see `write_golden_state`): one line
/// `group <hex(json(group id))>`, then `<hex key> <hex value>` per entry. The signer's seed is
/// [`GOLDEN_SEED`].
const GOLDEN: &str = include_str!("../../../tests/fixtures/mls-dm-state.txt");
const GOLDEN_SEED: [u8; 32] = [7; 32];

fn golden_dm() -> (MlsGroup, HashMap<Vec<u8>, Vec<u8>>) {
    let (sender, peer) = (XmtpProvider::new(), XmtpProvider::new());
    let key = InstallationKey::from_seed(&GOLDEN_SEED);
    let peer_key = InstallationKey::generate();
    let (me, them) = ("a".repeat(64), "b".repeat(64));
    let kp = build_key_package(&peer, &peer_key, &them).unwrap();
    let kp_bytes = kp.key_package().tls_serialize_detached().unwrap();
    let kp = validate_key_package(&sender, &kp_bytes, &peer_key.public_key(), &them).unwrap();
    let spec = DmSpec {
        creator_inbox_id: me.clone(),
        peer_inbox_id: them.clone(),
        membership: HashMap::from([(me, 1), (them, 1)]),
        failed_installations: vec![],
    };
    let (mut group, _) = create_dm(&sender, &key, &spec, &[kp]).unwrap();
    merge_pending(&sender, &mut group).unwrap();
    group.create_message(&sender, &key, b"golden").unwrap();
    let written = sender
        .storage()
        .take_dirty()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    (group, written)
}

/// Regenerates the fixture: `cargo test -p xmtp-client write_golden_state -- --ignored`.
/// Only when the stored format changes on purpose (with a migration for existing state).
#[test]
#[ignore = "writes the golden fixture"]
fn write_golden_state() {
    let (group, written) = golden_dm();
    let mut lines = vec![format!(
        "group {}",
        hex::encode(serde_json::to_vec(group.group_id()).unwrap())
    )];
    let mut entries: Vec<_> = written.into_iter().collect();
    entries.sort();
    lines.extend(
        entries
            .iter()
            .map(|(k, v)| format!("{} {}", hex::encode(k), hex::encode(v))),
    );
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mls-dm-state.txt"
    );
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// State written by an earlier build must still load: an openmls or serializer upgrade that
/// changes the stored shape fails here, not on a deployment's channels.
#[test]
fn golden_state_written_earlier_still_loads_and_sends() {
    let mut lines = GOLDEN.lines();
    let group_line = lines.next().unwrap().strip_prefix("group ").unwrap();
    let group_id: openmls::prelude::GroupId =
        serde_json::from_slice(&hex::decode(group_line).unwrap()).unwrap();
    let entries: Vec<(Vec<u8>, Vec<u8>)> = lines
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (hex::decode(k).unwrap(), hex::decode(v).unwrap())
        })
        .collect();
    assert!(entries.len() > 5, "a whole group's state");
    assert!(entries.iter().all(|(_, v)| v[0] == MSGPACK_MARK));

    let provider = XmtpProvider::new();
    provider.storage().load(entries.clone());
    let mut group = MlsGroup::load(provider.storage(), &group_id)
        .unwrap()
        .expect("the group is in the fixture");
    assert_eq!(group.epoch().as_u64(), 1);
    assert_eq!(group.members().count(), 2);
    assert_eq!(group.own_leaf_index().u32(), 0);

    // The loaded group works (the signer's seed is fixed), and what it writes back lands under
    // the keys already stored, in the current encoding.
    let key = InstallationKey::from_seed(&GOLDEN_SEED);
    group
        .create_message(&provider, &key, b"after an upgrade")
        .unwrap();
    let rewritten: HashMap<Vec<u8>, Vec<u8>> = provider
        .storage()
        .take_dirty()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    assert!(
        !rewritten.is_empty(),
        "sending advances the message secrets"
    );
    let stored: HashMap<_, _> = entries.into_iter().collect();
    let delta_key = group_load_prefixes(&group_id)[1].clone();
    for (k, v) in &rewritten {
        if *k == delta_key {
            continue; // the first write of a group's message secrets adds their delta key
        }
        assert!(
            stored.contains_key(k),
            "new key {}",
            String::from_utf8_lossy(k)
        );
        assert_eq!(v[0], MSGPACK_MARK);
    }
}

/// Applies written batches to a map, as a store would.
fn flush_into(store: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: WriteBatch) {
    for (k, v) in batch {
        match v {
            Some(v) => store.insert(k, v),
            None => store.remove(&k),
        };
    }
}

/// After the first send, a send stores only a small delta of the message secrets; the state
/// reloads from base plus delta exactly as it was in memory, keeps sending from there, and a
/// reload after a forget also sees the latest delta.
#[test]
fn message_secrets_are_stored_as_small_deltas_and_reload_exactly() {
    let sender = XmtpProvider::new();
    let (mut group, key) = new_dm(&sender);
    let gid = group.group_id().clone();
    let [prefix, delta_key] = group_load_prefixes(&gid);
    let secrets_key = G(&gid, ()).encode(MESSAGE_SECRETS).unwrap();
    let mut store = BTreeMap::new();
    let first = sender.storage().take_dirty();
    assert!(
        first.iter().any(|(k, _)| *k == delta_key),
        "a new group's first write includes its (empty) delta"
    );
    assert_eq!(first[0].0, delta_key, "delta keys sort before group keys");
    flush_into(&mut store, first);

    for i in 0..50 {
        group
            .create_message(&sender, &key, format!("m{i}").as_bytes())
            .unwrap();
        let batch = sender.storage().take_dirty();
        if i > 0 {
            assert_eq!(batch.len(), 1, "one key per send");
            assert_eq!(batch[0].0, delta_key);
            let size = batch[0].1.as_ref().unwrap().len();
            assert!(size < 300, "a send writes {size} bytes");
        }
        flush_into(&mut store, batch);
    }
    let in_memory = sender.storage().values.read().unwrap()[&secrets_key].clone();
    let reload = |store: &BTreeMap<Vec<u8>, Vec<u8>>| {
        let fresh = XmtpProvider::new();
        fresh.storage().load(
            store
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&prefix) || **k == delta_key || k.starts_with(MLS_GLOBAL_PREFIX)
                })
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        fresh
    };
    let fresh = reload(&store);
    assert_eq!(
        fresh.storage().values.read().unwrap()[&secrets_key],
        in_memory,
        "base + delta = the value in memory"
    );
    let mut reloaded = MlsGroup::load(fresh.storage(), &gid).unwrap().unwrap();
    reloaded
        .create_message(&fresh, &key, b"after reload")
        .unwrap();
    let batch = fresh.storage().take_dirty();
    assert_eq!(batch.len(), 1, "a reloaded group keeps writing deltas");
    flush_into(&mut store, batch);
    let again = reload(&store);
    assert_eq!(
        again.storage().values.read().unwrap()[&secrets_key],
        fresh.storage().values.read().unwrap()[&secrets_key],
    );

    // Forgetting and reloading in the same storage sees the latest delta too.
    fresh.storage().forget_prefix(&prefix);
    assert!(fresh.storage().bases.read().unwrap().is_empty());
    let latest = again.storage().values.read().unwrap()[&secrets_key].clone();
    fresh.storage().load(
        store
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) || **k == delta_key)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    assert_eq!(fresh.storage().values.read().unwrap()[&secrets_key], latest);

    // A delta that does not fit its base drops the value: the group fails to load instead
    // of reusing an old ratchet.
    let mut broken = store.clone();
    broken.insert(secrets_key.clone(), vec![MSGPACK_MARK, 1, 2]);
    let bad = reload(&broken);
    assert!(!bad
        .storage()
        .values
        .read()
        .unwrap()
        .contains_key(&secrets_key));
    assert!(MlsGroup::load(bad.storage(), &gid).map_or(true, |g| g.is_none()));
}
