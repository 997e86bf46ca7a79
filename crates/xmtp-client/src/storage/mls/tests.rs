//! Tests of the MLS state encoding and of reloading groups from it.

use std::collections::{BTreeMap, HashMap};

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{KeyPackage, MlsGroup};
use openmls_traits::OpenMlsProvider as _;

use super::*;
use crate::mls::dm::{
    create_dm, discard_creation, merge_creation, merge_pending, validate_key_package,
};
use crate::mls::group_ext::DmSpec;
use crate::mls::keypackage::build_key_package;
use crate::mls::provider::XmtpProvider;
use crate::mls::signer::InstallationKey;

mod golden;

/// The store key of a global entity.
fn global_key<K: Serialize + ?Sized>(label: &str, key: &K) -> Vec<u8> {
    match Gl(key).place(label).unwrap() {
        Place::Global(key) => key,
        Place::Group { .. } => unreachable!("a global entity"),
    }
}

/// The store key of a group's bundle.
fn bundle_key(group_id: &openmls::prelude::GroupId) -> Vec<u8> {
    [group_prefix(group_id).as_slice(), BUNDLE_NAME].concat()
}

/// The entities of a stored bundle.
fn bundle_entries(value: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    bundle::decode(value).unwrap().into_iter().collect()
}

/// A group's message secrets as held in memory.
fn secrets_in(provider: &XmtpProvider, group_id: &openmls::prelude::GroupId) -> Vec<u8> {
    provider
        .storage()
        .raw_entity(group_id, SECRETS_NAME)
        .expect("message secrets held")
}

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
    old.load([(global_key("t", &1u8), json)]);
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
    old.load([(global_key("t", &1u8), ints)]);
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

/// The spec of a DM between inbox "a…" (ours) and "b…" (a fresh installation of `peer`),
/// with the peer's key package as `sender` validated it.
fn dm_spec(sender: &XmtpProvider, peer: &XmtpProvider) -> (DmSpec, KeyPackage) {
    let peer_key = InstallationKey::generate();
    let (me, them) = ("a".repeat(64), "b".repeat(64));
    let kp = build_key_package(peer, &peer_key, &them).unwrap();
    let kp_bytes = kp.key_package().tls_serialize_detached().unwrap();
    let kp = validate_key_package(sender, &kp_bytes, &peer_key.public_key(), &them).unwrap();
    let spec = DmSpec {
        creator_inbox_id: me.clone(),
        peer_inbox_id: them.clone(),
        membership: HashMap::from([(me, 1), (them, 1)]),
        failed_installations: vec![],
    };
    (spec, kp)
}

/// A DM created by `sender` with a fresh peer, its creation commit merged; and the sender's
/// installation key.
fn new_dm(sender: &XmtpProvider) -> (MlsGroup, InstallationKey) {
    let peer = XmtpProvider::new();
    let key = InstallationKey::generate();
    let (spec, kp) = dm_spec(sender, &peer);
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

    // One bundle and one (empty) delta: a new group is two rows.
    let keys: Vec<&Vec<u8>> = own.iter().map(|(k, _)| k).collect();
    assert_eq!(own.len(), 2, "{keys:?}");
    let bundle = &own
        .iter()
        .find(|(k, _)| *k == bundle_key(group.group_id()))
        .unwrap()
        .1;
    let entities = bundle_entries(bundle);
    for name in [
        &b"tree/null"[..],
        b"context/null",
        b"group_state/null",
        b"join_config/null",
    ] {
        assert!(
            entities.contains_key(name),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    let secrets = entities[SECRETS_NAME].len();
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
    for (k, v) in &rewritten {
        if *k == bundle_key(group.group_id()) {
            assert!(bundle_entries(v).values().all(|v| v[0] == MSGPACK_MARK));
        } else {
            assert!(k.starts_with(DELTA_PREFIX) || v[0] == MSGPACK_MARK);
        }
    }
    // Re-encoding the message secrets without field names is a large change: a new base.
    assert_eq!(named, rewritten.len() == 2, "{} rows", rewritten.len());
    provider.storage().load(rewritten);
    let again = MlsGroup::load(provider.storage(), group.group_id())
        .unwrap()
        .unwrap();
    assert_eq!(again.epoch(), group.epoch());
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

/// A send stores only a small delta of the message secrets; the state reloads from base plus
/// delta exactly as it was in memory, keeps sending from there, and a reload after a forget
/// also sees the latest delta.
#[test]
fn message_secrets_are_stored_as_small_deltas_and_reload_exactly() {
    let sender = XmtpProvider::new();
    let (mut group, key) = new_dm(&sender);
    let gid = group.group_id().clone();
    let [prefix, delta_key] = group_load_prefixes(&gid);
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
        assert_eq!(batch.len(), 1, "one key per send");
        assert_eq!(batch[0].0, delta_key);
        let size = batch[0].1.as_ref().unwrap().len();
        assert!(size < 300, "a send writes {size} bytes");
        flush_into(&mut store, batch);
    }
    let in_memory = secrets_in(&sender, &gid);
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
        secrets_in(&fresh, &gid),
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
    assert_eq!(secrets_in(&again, &gid), secrets_in(&fresh, &gid));

    // Forgetting and reloading in the same storage sees the latest delta too.
    fresh.storage().forget_group(&gid);
    assert!(fresh.storage().raw_entity(&gid, SECRETS_NAME).is_none());
    let latest = secrets_in(&again, &gid);
    fresh.storage().load(
        store
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) || **k == delta_key)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    assert_eq!(secrets_in(&fresh, &gid), latest);

    // A delta that does not fit its base drops the value: the group fails to load instead
    // of reusing an old ratchet.
    let mut broken = store.clone();
    let mut entities = bundle_entries(&broken[&bundle_key(&gid)]);
    entities.insert(SECRETS_NAME.to_vec(), vec![MSGPACK_MARK, 1, 2]);
    broken.insert(
        bundle_key(&gid),
        bundle::encode(entities.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))),
    );
    let bad = reload(&broken);
    assert!(bad.storage().raw_entity(&gid, SECRETS_NAME).is_none());
    assert!(MlsGroup::load(bad.storage(), &gid).map_or(true, |g| g.is_none()));
    // So does a bundle that does not decode.
    let mut broken = store.clone();
    broken.get_mut(&bundle_key(&gid)).unwrap().pop();
    let bad = reload(&broken);
    assert!(MlsGroup::load(bad.storage(), &gid).map_or(true, |g| g.is_none()));
}

/// A failed flush puts its rows back: the next flush writes them, or newer ones where the
/// group changed since; a group with unflushed changes is not forgotten, and a reload of the
/// store does not overwrite them.
#[test]
fn a_failed_flush_is_retried_and_unflushed_groups_stay() {
    let sender = XmtpProvider::new();
    let (mut group, key) = new_dm(&sender);
    let gid = group.group_id().clone();
    let [_, delta_key] = group_load_prefixes(&gid);
    let failed = sender.storage().take_dirty();
    assert!(sender.storage().take_dirty().is_empty());
    sender.storage().restore_dirty(failed.clone());
    sender.storage().forget_group(&gid);
    assert!(
        sender.storage().raw_entity(&gid, SECRETS_NAME).is_some(),
        "kept"
    );
    assert_eq!(sender.storage().take_dirty(), failed, "retried as it was");

    // Fails again; meanwhile a send changes the delta: the retry carries the bundle of the
    // failed flush and the newer delta.
    sender.storage().restore_dirty(failed.clone());
    group.create_message(&sender, &key, b"later").unwrap();
    let retry = sender.storage().take_dirty();
    assert_eq!(retry.len(), 2);
    assert_eq!(retry[1], failed[1], "the bundle");
    assert_eq!(retry[0].0, delta_key);
    assert_ne!(retry[0], failed[0], "the newer delta");
    let mut store = BTreeMap::new();
    flush_into(&mut store, retry);
    let fresh = XmtpProvider::new();
    fresh
        .storage()
        .load(store.iter().map(|(k, v)| (k.clone(), v.clone())));
    assert_eq!(secrets_in(&fresh, &gid), secrets_in(&sender, &gid));

    // Unflushed changes survive a reload of (older) stored state.
    group.create_message(&sender, &key, b"unflushed").unwrap();
    let newest = secrets_in(&sender, &gid);
    sender
        .storage()
        .load(store.iter().map(|(k, v)| (k.clone(), v.clone())));
    assert_eq!(secrets_in(&sender, &gid), newest);
    assert_eq!(sender.storage().take_dirty().len(), 1);
    sender.storage().forget_group(&gid);
    assert!(
        sender.storage().raw_entity(&gid, SECRETS_NAME).is_none(),
        "released once durable"
    );
}

#[test]
fn a_dm_being_created_is_not_flushed_until_merged_and_a_discarded_one_leaves_nothing() {
    let sender = XmtpProvider::new();
    let peer = XmtpProvider::new();
    let key = InstallationKey::generate();
    let (spec, kp) = dm_spec(&sender, &peer);
    let group_rows = |batch: &WriteBatch, group: &MlsGroup| {
        let [prefix, delta] = group_load_prefixes(group.group_id());
        batch
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) || k.starts_with(&delta))
            .count()
    };

    // Built, commit not merged: a flush (another send's) writes nothing of it.
    let (mut kept, _) = create_dm(&sender, &key, &spec, std::slice::from_ref(&kp)).unwrap();
    let (given_up, _) = create_dm(&sender, &key, &spec, &[kp]).unwrap();
    let batch = sender.storage().take_dirty();
    assert_eq!(group_rows(&batch, &kept), 0, "{batch:?}");
    assert_eq!(group_rows(&batch, &given_up), 0);

    // Merged: the next flush writes the whole group.
    merge_creation(&sender, &mut kept).unwrap();
    let batch = sender.storage().take_dirty();
    assert!(group_rows(&batch, &kept) >= 1, "bundle written once merged");
    assert_eq!(group_rows(&batch, &given_up), 0);

    // Given up: it leaves memory and is never written.
    discard_creation(&sender, &given_up);
    let batch = sender.storage().take_dirty();
    assert_eq!(group_rows(&batch, &given_up), 0);
    assert!(sender
        .storage()
        .raw_entity(given_up.group_id(), b"join_config/null")
        .is_none());
    assert!(sender
        .storage()
        .raw_entity(kept.group_id(), b"join_config/null")
        .is_some());
}
