//! Message secrets written as a small change against a stored base.
//!
//! openmls rewrites a group's whole message-secrets store (~2 KB for a DM) after every message
//! it encrypts, yet a send changes only the sender ratchet: about 160 bytes in one place. So
//! [`MlsStorage`](super::MlsStorage) keeps the message secrets as last stored in the group's
//! bundle (the *base*) and, while a new value differs from it in one short span, stores only
//! that span under a separate *delta* key: `mls/d/<hex(group id)>`. Loading applies the delta
//! to the base. A larger change (a new epoch, a received message) stores a new base (the
//! bundle is rewritten) together with an empty delta, in the same batch, so a base and the
//! delta written against it are always durable together.
//!
//! Why a separate key space: delta keys sort before every group's keys, so the deltas of the
//! groups created in one round are inserted next to each other and a later round that sends to
//! the same groups rewrites a few densely packed small rows instead of one large row per group
//! (a database page or more each).
//!
//! Format: a marker byte, the length of the unchanged prefix and of the unchanged suffix (u32
//! little-endian each), then the replacement for what lies between them.

use openmls::prelude::GroupId;

/// Prefix of every delta key; sorts before `mls/g/` (group state) and `mls/k/` (global).
pub const DELTA_PREFIX: &[u8] = b"mls/d/";

/// First byte of a delta (MessagePack values start with 0, JSON with text).
const DELTA_MARK: u8 = 1;
const HEADER: usize = 9;

/// A delta whose changed span exceeds this many bytes is not worth it: a new base is stored.
const MAX_CHANGED: usize = 512;

/// The delta key of a group's message secrets.
pub fn delta_key(group_id: &[u8]) -> Vec<u8> {
    let mut key = vec![0u8; DELTA_PREFIX.len() + group_id.len() * 2];
    key[..DELTA_PREFIX.len()].copy_from_slice(DELTA_PREFIX);
    hex::encode_to_slice(group_id, &mut key[DELTA_PREFIX.len()..]).expect("sized for the id");
    key
}

/// The JSON of the id of the group a delta key belongs to (how the storage names groups).
pub fn group_json_of(delta_key: &[u8]) -> Option<Vec<u8>> {
    let raw = hex::decode(delta_key.strip_prefix(DELTA_PREFIX)?).ok()?;
    serde_json::to_vec(&GroupId::from_slice(&raw)).ok()
}

/// The delta that turns `base` into `value`, or `None` when they differ in more than
/// [`MAX_CHANGED`] bytes (store a new base instead).
pub fn diff(base: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let prefix = base.iter().zip(value).take_while(|(a, b)| a == b).count();
    let room = base.len().min(value.len()) - prefix;
    let suffix = base
        .iter()
        .rev()
        .zip(value.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    let changed = &value[prefix..value.len() - suffix];
    if changed.len() > MAX_CHANGED {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER + changed.len());
    out.push(DELTA_MARK);
    out.extend_from_slice(&u32::try_from(prefix).ok()?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(suffix).ok()?.to_le_bytes());
    out.extend_from_slice(changed);
    Some(out)
}

/// The delta that leaves `base` as it is (stored with every new base).
pub fn unchanged(base: &[u8]) -> Vec<u8> {
    diff(base, base).expect("an identical value has no changed span")
}

/// `base` with `delta` applied; `None` if the delta does not fit the base (corrupt state).
pub fn apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    let (&mark, rest) = delta.split_first()?;
    if mark != DELTA_MARK || rest.len() < HEADER - 1 {
        return None;
    }
    let prefix = usize::try_from(u32::from_le_bytes(rest[..4].try_into().ok()?)).ok()?;
    let suffix = usize::try_from(u32::from_le_bytes(rest[4..8].try_into().ok()?)).ok()?;
    if prefix.checked_add(suffix)? > base.len() {
        return None;
    }
    let changed = &rest[8..];
    let mut out = Vec::with_capacity(prefix + changed.len() + suffix);
    out.extend_from_slice(&base[..prefix]);
    out.extend_from_slice(changed);
    out.extend_from_slice(&base[base.len() - suffix..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_rebuilds_the_value_from_its_base() {
        let base: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        let mut value = base.clone();
        value[1500..1540].copy_from_slice(&[7u8; 40]);
        value.insert(1520, 9); // a length change (MessagePack integers grow)
        let delta = diff(&base, &value).unwrap();
        assert!(delta.len() < 60, "{} bytes", delta.len());
        assert_eq!(apply(&base, &delta).unwrap(), value);
        assert_eq!(apply(&base, &unchanged(&base)).unwrap(), base);
        // Shorter values, changes at either end.
        assert_eq!(
            apply(&base, &diff(&base, &base[..10]).unwrap()).unwrap(),
            &base[..10]
        );
        let mut front = base.clone();
        front[0] = 255;
        assert_eq!(apply(&base, &diff(&base, &front).unwrap()).unwrap(), front);
    }

    #[test]
    fn a_large_change_asks_for_a_new_base_and_a_bad_delta_is_refused() {
        let base = vec![0u8; 2000];
        let value = vec![1u8; 2000];
        assert!(diff(&base, &value).is_none());
        let delta = diff(&base, &base[..1500]).unwrap();
        assert!(
            apply(&base[..100], &delta).is_none(),
            "prefix beyond the base"
        );
        assert!(apply(&base, &[0, 1, 2]).is_none());
        assert!(apply(&base, &[]).is_none());
    }

    #[test]
    fn delta_keys_name_their_group() {
        let group = GroupId::from_slice(&[3u8; 16]);
        let delta = delta_key(group.as_slice());
        assert_eq!(
            delta,
            [DELTA_PREFIX, hex::encode([3u8; 16]).as_bytes()].concat()
        );
        assert_eq!(
            group_json_of(&delta).unwrap(),
            serde_json::to_vec(&group).unwrap()
        );
        assert!(group_json_of(b"mls/d/zz").is_none());
        assert!(delta.as_slice() < b"mls/g/".as_slice() && delta.as_slice() < b"mls/k/".as_slice());
    }
}
