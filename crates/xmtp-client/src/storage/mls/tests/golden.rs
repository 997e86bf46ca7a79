//! Golden fixtures: MLS state as earlier builds stored it must still load and send.

use super::*;

/// MLS state of a DM as versions before bundles wrote it (one key per entity), and as this
/// version writes it (see `write_golden_state`): one line `group <hex(json(group id))>`, then
/// `<hex key> <hex value>` per entry. The signer's seed is [`GOLDEN_SEED`].
const GOLDEN_PER_ENTITY: &str = include_str!("../../../../tests/fixtures/mls-dm-state.txt");
const GOLDEN_BUNDLED: &str = include_str!("../../../../tests/fixtures/mls-dm-bundle.txt");
const GOLDEN_SEED: [u8; 32] = [7; 32];

fn golden_dm() -> (MlsGroup, HashMap<Vec<u8>, Vec<u8>>) {
    let (sender, peer) = (XmtpProvider::new(), XmtpProvider::new());
    let key = InstallationKey::from_seed(&GOLDEN_SEED);
    let (spec, kp) = dm_spec(&sender, &peer);
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

/// Regenerates the fixture of the current layout:
/// `cargo test -p xmtp-client write_golden_state -- --ignored`. Only when the stored format
/// changes on purpose (keep the earlier fixture, and a test that it still loads).
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
        "/tests/fixtures/mls-dm-bundle.txt"
    );
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Stored (key, value) entries.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A golden fixture: the group id and the stored entries.
fn read_golden(text: &str) -> (openmls::prelude::GroupId, Entries) {
    let mut lines = text.lines();
    let group_line = lines.next().unwrap().strip_prefix("group ").unwrap();
    let group_id = serde_json::from_slice(&hex::decode(group_line).unwrap()).unwrap();
    let entries = lines
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (hex::decode(k).unwrap(), hex::decode(v).unwrap())
        })
        .collect();
    (group_id, entries)
}

/// Loads the golden group from `store`, checks it is the fixture's DM and sends in it; returns
/// the provider (with the send's changes not yet drained).
fn load_golden_and_send(
    store: &BTreeMap<Vec<u8>, Vec<u8>>,
    group_id: &openmls::prelude::GroupId,
) -> XmtpProvider {
    let provider = XmtpProvider::new();
    provider
        .storage()
        .load(store.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut group = MlsGroup::load(provider.storage(), group_id)
        .unwrap()
        .expect("the group is in the store");
    assert_eq!(group.epoch().as_u64(), 1);
    assert_eq!(group.members().count(), 2);
    assert_eq!(group.own_leaf_index().u32(), 0);
    // The loaded group works (the signer's seed is fixed).
    let key = InstallationKey::from_seed(&GOLDEN_SEED);
    group
        .create_message(&provider, &key, b"after an upgrade")
        .unwrap();
    provider
}

/// State written by an earlier build must still load: an openmls or serializer upgrade that
/// changes the stored shape fails here, not on a deployment's channels. A send then writes
/// only the delta of its message secrets.
#[test]
fn golden_state_written_earlier_still_loads_and_sends() {
    let (group_id, entries) = read_golden(GOLDEN_BUNDLED);
    assert_eq!(entries.len(), 2, "a bundle and a delta");
    let store: BTreeMap<_, _> = entries.into_iter().collect();
    assert!(store.contains_key(&bundle_key(&group_id)));
    let provider = load_golden_and_send(&store, &group_id);
    let rewritten = provider.storage().take_dirty();
    let keys: Vec<_> = rewritten.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![group_load_prefixes(&group_id)[1].clone()]);
}

/// A group stored one key per entity (before bundles) loads, and the next flush rewrites it
/// as a bundle and deletes every old key in the same batch; the result loads and sends too.
#[test]
fn per_entity_state_loads_and_is_rewritten_as_a_bundle() {
    let (group_id, entries) = read_golden(GOLDEN_PER_ENTITY);
    assert!(entries.len() > 5, "a whole group's state");
    assert!(entries.iter().all(|(_, v)| v[0] == MSGPACK_MARK));
    let old_keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
    let mut store: BTreeMap<_, _> = entries.into_iter().collect();
    let provider = load_golden_and_send(&store, &group_id);
    let batch = provider.storage().take_dirty();
    for old in &old_keys {
        assert!(
            batch.iter().any(|(k, v)| k == old && v.is_none()),
            "old key {} deleted",
            String::from_utf8_lossy(old)
        );
    }
    let [_, delta_key] = group_load_prefixes(&group_id);
    let written: Vec<&Vec<u8>> = batch
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|_| k))
        .collect();
    assert_eq!(written, vec![&delta_key, &bundle_key(&group_id)]);
    flush_into(&mut store, batch);
    assert_eq!(store.len(), 2, "only the bundle and the delta remain");
    let again = load_golden_and_send(&store, &group_id);
    let keys: Vec<_> = again
        .storage()
        .take_dirty()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![delta_key],
        "a migrated group is not rewritten again"
    );
}
