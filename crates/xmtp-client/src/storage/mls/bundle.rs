//! A group's entities in one stored value.
//!
//! Format: a marker byte, the number of entities (u32 little-endian), then per entity its name length (u32 little-endian), its name
//! (`label/json(sub key)`, as in the per-entity keys of earlier versions), its value length
//! (u32 little-endian) and its value (as [`encode`](super::encode) wrote it). Entities appear
//! in name order. A value that does not parse whole is refused.

/// First byte of a bundle (MessagePack values start with 0, deltas with 1, JSON with text).
const BUNDLE_MARK: u8 = 2;

/// The bundle of `entries` (name, value).
pub fn encode<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    let (count, size) = entries.clone().fold((0u32, 0usize), |(c, s), (n, v)| {
        (c + 1, s + 8 + n.len() + v.len())
    });
    let mut out = Vec::with_capacity(5 + size);
    out.push(BUNDLE_MARK);
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in entries {
        for part in [name, value] {
            let len = u32::try_from(part.len()).expect("entities are far below 4 GB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// The entries of a bundle; `None` if `bytes` is not one (corrupt state).
pub fn decode(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let (&mark, rest) = bytes.split_first()?;
    if mark != BUNDLE_MARK {
        return None;
    }
    let count = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
    let mut rest = &rest[4..];
    let take = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let part = rest.get(4..4 + len)?.to_vec();
        *rest = &rest[4 + len..];
        Some(part)
    };
    let mut out = Vec::new();
    for _ in 0..count {
        let name = take(&mut rest)?;
        let value = take(&mut rest)?;
        out.push((name, value));
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_and_a_damaged_one_is_refused() {
        let entries: Vec<(&[u8], &[u8])> = vec![
            (b"context/null", &[0, 1, 2, 3]),
            (b"epoch_key_pairs/[1,0]", &[]),
            (b"tree/null", &[9; 300]),
        ];
        let bytes = encode(entries.iter().copied());
        let decoded = decode(&bytes).unwrap();
        let back: Vec<(&[u8], &[u8])> = decoded
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(back, entries);
        assert_eq!(decode(&encode(std::iter::empty())).unwrap(), vec![]);
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode(&[]).is_none());
        let mut other = bytes.clone();
        other[0] = 0;
        assert!(decode(&other).is_none(), "not a bundle mark");
    }
}
