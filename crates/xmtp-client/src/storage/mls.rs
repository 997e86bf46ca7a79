//! [`MlsStorage`]: openmls's `StorageProvider` as an in-memory write-through cache.
//!
//! openmls calls its storage synchronously in the middle of cryptographic operations, while our
//! [`Store`](super::Store) is async and may sit on a network database. So every openmls entity
//! lives in memory here (MessagePack values, see [`encode`]; older JSON values still read) and
//! each change marks what it belongs to as dirty. The client drains the changes with
//! [`MlsStorage::take_dirty`] and writes them in one atomic batch before it publishes anything
//! (see the crash-safe ordering in the parent module).
//!
//! # Layout in the store
//!
//! - `mls/k/<label>/<json(key)>`: an entity not tied to a group (key packages, key pairs,
//!   pre-shared keys), one key each.
//! - `mls/g/<hex(json(group id))>/bundle`: everything openmls keeps for one group (tree,
//!   context, secrets, configuration, …; ~4.7 KB for a DM) in one value, a *bundle* (see
//!   [`bundle`]). A new DM so costs one stored row and one seal instead of one per entity
//!   (eleven), and a change to any entity rewrites the whole bundle — openmls rewrites most of
//!   them together anyway (a merge, a processed commit).
//! - `mls/d/<hex(group id)>`: the delta of the group's message secrets against the value in
//!   its bundle (the *base*). openmls rewrites the message secrets after every message it
//!   encrypts, and only they change then: a send writes this small delta, not the bundle (see
//!   [`delta`]).
//!
//! Earlier versions stored every group entity under its own key,
//! `mls/g/<hex(json(group id))>/<label>/<json(sub key)>` (message secrets included, their
//! delta as above). Those keys still load; a group loaded from them is written back as a
//! bundle with the next flush, which deletes the old keys in the same batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kv::WriteBatch;

/// Key prefix of every MLS entry in the [`Store`](super::Store).
pub const MLS_PREFIX: &[u8] = b"mls/";
/// Prefix of entries not tied to a group (key packages, key pairs, PSKs): loaded at start.
pub const MLS_GLOBAL_PREFIX: &[u8] = b"mls/k/";
/// Prefix of the keys of a group's state (before the hex of its id's JSON).
const GROUP_KEYS: &[u8] = b"mls/g/";
/// Last part of a group's bundle key; never a label (those are followed by `/`).
const BUNDLE_NAME: &[u8] = b"bundle";

/// Store key prefix of everything openmls keeps for one group, so a group's state can be
/// loaded on its own: `mls/g/<hex(json(group id))>/`.
pub fn group_prefix(group_id: &openmls::prelude::GroupId) -> Vec<u8> {
    let json = serde_json::to_vec(group_id).expect("group ids serialize");
    group_prefix_from_json(&json)
}

fn group_prefix_from_json(json: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; GROUP_KEYS.len() + json.len() * 2 + 1];
    out[..GROUP_KEYS.len()].copy_from_slice(GROUP_KEYS);
    hex::encode_to_slice(
        json,
        &mut out[GROUP_KEYS.len()..GROUP_KEYS.len() + json.len() * 2],
    )
    .expect("sized for the id");
    *out.last_mut().expect("not empty") = b'/';
    out
}

/// An entity scoped to one group (`G(group_id, sub_key)`).
struct G<'a, Id: ?Sized, S>(&'a Id, S);
/// An entity not tied to a group.
struct Gl<'a, K: ?Sized>(&'a K);

/// Where an entity lives.
enum Place {
    /// Under its own store key.
    Global(Vec<u8>),
    /// In the bundle of the group with this id JSON, under this name (`label/json(sub key)`,
    /// also the tail of the entity's store key in the per-entity layout).
    Group { group: Vec<u8>, name: Vec<u8> },
}

/// How an openmls key locates an entity.
trait EntityKey {
    fn place(&self, label: &str) -> Result<Place, MlsStorageError>;
}

fn entity_name<S: Serialize + ?Sized>(label: &str, sub: &S) -> Result<Vec<u8>, MlsStorageError> {
    let mut name = Vec::with_capacity(label.len() + 8);
    name.extend_from_slice(label.as_bytes());
    name.push(b'/');
    serde_json::to_writer(&mut name, sub)?;
    Ok(name)
}

impl<Id: Serialize + ?Sized, S: Serialize> EntityKey for G<'_, Id, S> {
    fn place(&self, label: &str) -> Result<Place, MlsStorageError> {
        Ok(Place::Group {
            group: serde_json::to_vec(self.0)?,
            name: entity_name(label, &self.1)?,
        })
    }
}

impl<K: Serialize + ?Sized> EntityKey for Gl<'_, K> {
    fn place(&self, label: &str) -> Result<Place, MlsStorageError> {
        let mut key = MLS_GLOBAL_PREFIX.to_vec();
        key.extend_from_slice(&entity_name(label, self.0)?);
        Ok(Place::Global(key))
    }
}

mod bundle;
mod delta;
mod entities;
mod flush;
mod provider_impl;

pub use delta::DELTA_PREFIX;

const JOIN_CONFIG: &str = "join_config";
const OWN_LEAF_NODES: &str = "own_leaf_nodes";
const PROPOSAL: &str = "proposal";
const PROPOSAL_REFS: &str = "proposal_refs";
const TREE: &str = "tree";
const INTERIM_TRANSCRIPT_HASH: &str = "interim_transcript_hash";
const CONTEXT: &str = "context";
const CONFIRMATION_TAG: &str = "confirmation_tag";
const GROUP_STATE: &str = "group_state";
const MESSAGE_SECRETS: &str = "message_secrets";
const RESUMPTION_PSK: &str = "resumption_psk";
const OWN_LEAF_INDEX: &str = "own_leaf_index";
const EPOCH_SECRETS: &str = "epoch_secrets";
const SIGNATURE_KEY: &str = "signature_key";
const ENCRYPTION_KEY: &str = "encryption_key";
const EPOCH_KEY_PAIRS: &str = "epoch_key_pairs";
const KEY_PACKAGE: &str = "key_package";
const PSK: &str = "psk";

/// The name of a group's message secrets in its bundle (`message_secrets/null`).
const SECRETS_NAME: &[u8] = b"message_secrets/null";

/// Errors openmls sees from [`MlsStorage`].
#[derive(Debug, thiserror::Error)]
pub enum MlsStorageError {
    /// An entity failed to (de)serialize: a bug or corrupted state, not retryable.
    #[error("MLS state (de)serialization failed: {0}")]
    Serde(#[from] serde_json::Error),
    /// An entity failed to encode as MessagePack (a bug, not retryable).
    #[error("MLS state encoding failed: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// A stored entity failed to decode (corrupted state, not retryable).
    #[error("MLS state decoding failed: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// First byte of a MessagePack-encoded value; JSON text never starts with it.
const MSGPACK_MARK: u8 = 0;

/// Encodes an openmls entity: a marker byte, then compact MessagePack (structs as arrays of
/// their fields, in declaration order). The secrets a message send rewrites are byte vectors,
/// written as MessagePack `bin` strings (one byte per byte, copied rather than encoded one
/// integer at a time). One state write per message makes size matter: a DM's message secrets
/// take ~2.2 KB so, ~3.1 KB with field names, ~10 KB as JSON. Earlier encodings (named
/// fields, byte vectors as integer arrays, JSON) decode the same way.
fn encode<V: Serialize + ?Sized>(value: &V, names: FieldNames) -> Result<Vec<u8>, MlsStorageError> {
    let mut out = vec![MSGPACK_MARK];
    let serializer = rmp_serde::Serializer::new(&mut out)
        .with_bytes(rmp_serde::config::BytesMode::ForceIterables);
    match names {
        FieldNames::Omitted => value.serialize(&mut { serializer })?,
        FieldNames::Written => value.serialize(&mut serializer.with_struct_map())?,
    }
    Ok(out)
}

/// Whether [`encode`] writes struct field names. Today's encoding omits them; storages that
/// write them exist to prove that state written by earlier versions still reloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FieldNames {
    #[default]
    Omitted,
    Written,
}

/// Decodes what [`encode`] wrote, or the JSON earlier versions wrote.
fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, MlsStorageError> {
    match bytes.split_first() {
        Some((&MSGPACK_MARK, rest)) => Ok(rmp_serde::from_slice(rest)?),
        _ => Ok(serde_json::from_slice(bytes)?),
    }
}

/// openmls state held in memory, with a record of what changed since the last flush.
#[derive(Debug, Default)]
pub struct MlsStorage {
    state: RwLock<State>,
    field_names: FieldNames,
}

#[derive(Debug, Default)]
struct State {
    /// Entities not tied to a group, by store key.
    global: HashMap<Vec<u8>, Vec<u8>>,
    /// Each resident group's entities, by the JSON of its id.
    groups: HashMap<Vec<u8>, Group>,
    /// Groups changed since the last flush (their rows are built when it drains them).
    dirty_groups: HashSet<Vec<u8>>,
    /// Other writes for the next flush: changed global entities, and the rows of a failed
    /// flush put back by [`MlsStorage::restore_dirty`].
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Groups being created ([`MlsStorage::hold_group`]): left out of flushes until released.
    held: HashSet<Vec<u8>>,
}

impl State {
    /// Whether the group with this id JSON has changes not yet durable: it is dirty, or rows
    /// of a failed flush wait in `pending`.
    fn unflushed(&self, json: &[u8]) -> bool {
        if self.dirty_groups.contains(json) {
            return true;
        }
        if self.pending.is_empty() {
            return false;
        }
        let prefix = group_prefix_from_json(json);
        let delta_waits = raw_group_id(json)
            .is_some_and(|raw| self.pending.contains_key(&delta::delta_key(&raw)));
        delta_waits
            || self
                .pending
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

/// One group's entities and what of them the next flush writes.
#[derive(Debug, Default)]
struct Group {
    /// Name (`label/json(sub key)`) → encoded value, message secrets as they are now.
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The message secrets as the bundle stores them (or will, at the next flush): the base
    /// the delta applies to. Present exactly when `entries` holds message secrets.
    base: Option<Vec<u8>>,
    /// The delta to write at the next flush (`Some(None)`: delete it).
    delta: Option<Option<Vec<u8>>>,
    /// The bundle must be written at the next flush.
    rewrite: bool,
    /// Keys of the per-entity layout this group was loaded from: deleted when the bundle is
    /// written.
    legacy: Vec<Vec<u8>>,
    /// The group's delta key, once known.
    delta_key: Option<Vec<u8>>,
}

impl Group {
    /// The entries as the bundle stores them: message secrets as their base.
    fn stored_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.entries.iter().map(|(name, value)| match &self.base {
            Some(base) if name == SECRETS_NAME => (name.as_slice(), base.as_slice()),
            _ => (name.as_slice(), value.as_slice()),
        })
    }

    fn put(&mut self, name: Vec<u8>, value: Vec<u8>) {
        if self.entries.get(&name) == Some(&value) {
            return;
        }
        if name == SECRETS_NAME {
            // A small change against the stored base is written as a delta; a larger one
            // stores a new base (the bundle) with an empty delta, in the same batch. So does
            // any change while the bundle waits to be written anyway (a new DM's first
            // messages before its first flush): no delta to compute.
            let change = match &self.base {
                Some(b) if !self.rewrite => delta::diff(b, &value),
                _ => None,
            };
            match change {
                Some(d) => self.delta = Some(Some(d)),
                None => {
                    self.delta = Some(Some(delta::unchanged(&value)));
                    self.base = Some(value.clone());
                    self.rewrite = true;
                }
            }
        } else {
            self.rewrite = true;
        }
        self.entries.insert(name, value);
    }

    fn delete(&mut self, name: &[u8]) {
        if self.entries.remove(name).is_none() {
            return;
        }
        if name == SECRETS_NAME {
            self.base = None;
            self.delta = Some(None);
        }
        self.rewrite = true;
    }

    fn is_dirty(&self) -> bool {
        self.rewrite || self.delta.is_some()
    }
}

/// The prefixes that hold one group's state, for [`Store::scan_prefixes`](super::Store):
/// its keys (the bundle, or the per-entity keys of earlier versions) and the delta of its
/// message secrets.
pub fn group_load_prefixes(group_id: &openmls::prelude::GroupId) -> [Vec<u8>; 2] {
    [
        group_prefix(group_id),
        delta::delta_key(group_id.as_slice()),
    ]
}

/// The raw group id a group id JSON names (`None` if it is not one).
fn raw_group_id(json: &[u8]) -> Option<Vec<u8>> {
    serde_json::from_slice::<openmls::prelude::GroupId>(json)
        .ok()
        .map(|g| g.as_slice().to_vec())
}

impl MlsStorage {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that writes values the way versions before the compact encoding did
    /// (struct field names included), to prove such state still reloads.
    pub fn writing_field_names() -> Self {
        Self {
            field_names: FieldNames::Written,
            ..Self::default()
        }
    }

    /// Number of entities held (for tests and sizing).
    pub fn len(&self) -> usize {
        let state = self.state.read().expect("poisoned");
        state.global.len()
            + state
                .groups
                .values()
                .map(|g| g.entries.len())
                .sum::<usize>()
    }

    /// Whether no entities are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A group entity's encoded value as held now, by name (`label/json(sub key)`).
    #[cfg(test)]
    pub(crate) fn raw_entity(
        &self,
        group_id: &openmls::prelude::GroupId,
        name: &[u8],
    ) -> Option<Vec<u8>> {
        let json = serde_json::to_vec(group_id).expect("group ids serialize");
        let state = self.state.read().expect("poisoned");
        state.groups.get(&json)?.entries.get(name).cloned()
    }
}

#[cfg(test)]
mod tests;
