//! [`MlsStorage`]: openmls's `StorageProvider` as an in-memory write-through cache.
//!
//! openmls calls its storage synchronously in the middle of cryptographic operations, while our
//! [`Store`](super::Store) is async and may sit on a network database. So every openmls entity
//! lives in a `HashMap` here (MessagePack values, see [`encode`]; older JSON values still read) and each
//! change is also recorded in a dirty set. The client drains the dirty set with
//! [`MlsStorage::take_dirty`] and writes it in one atomic batch before it publishes anything
//! (see the crash-safe ordering in the parent module).

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kv::WriteBatch;

/// Key prefix of every MLS entry in the [`Store`](super::Store).
pub const MLS_PREFIX: &[u8] = b"mls/";
/// Prefix of entries not tied to a group (key packages, key pairs, PSKs): loaded at start.
pub const MLS_GLOBAL_PREFIX: &[u8] = b"mls/k/";

/// Store key prefix of everything openmls keeps for one group, so a group's state can be
/// loaded (or dropped) on its own: `mls/g/<hex(json(group id))>/`.
pub fn group_prefix(group_id: &openmls::prelude::GroupId) -> Vec<u8> {
    let json = serde_json::to_vec(group_id).expect("group ids serialize");
    group_prefix_from_json(&json)
}

fn group_prefix_from_json(json: &[u8]) -> Vec<u8> {
    [b"mls/g/".as_slice(), hex::encode(json).as_bytes(), b"/"].concat()
}

/// A key scoped to one group (`G(group_id, sub_key)`).
struct G<'a, Id: ?Sized, S>(&'a Id, S);
/// A key not tied to a group.
struct Gl<'a, K: ?Sized>(&'a K);

/// How an openmls key becomes a store key.
trait StoreKey {
    fn encode(&self, label: &str) -> Result<Vec<u8>, MlsStorageError>;
}

impl<Id: Serialize + ?Sized, S: Serialize> StoreKey for G<'_, Id, S> {
    fn encode(&self, label: &str) -> Result<Vec<u8>, MlsStorageError> {
        let mut out = group_prefix_from_json(&serde_json::to_vec(self.0)?);
        out.extend_from_slice(label.as_bytes());
        out.push(b'/');
        out.extend_from_slice(&serde_json::to_vec(&self.1)?);
        Ok(out)
    }
}

impl<K: Serialize + ?Sized> StoreKey for Gl<'_, K> {
    fn encode(&self, label: &str) -> Result<Vec<u8>, MlsStorageError> {
        let mut out = MLS_GLOBAL_PREFIX.to_vec();
        out.extend_from_slice(label.as_bytes());
        out.push(b'/');
        out.extend_from_slice(&serde_json::to_vec(self.0)?);
        Ok(out)
    }
}

mod delta;
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
    values: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
    dirty: RwLock<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Per message-secrets key: the full value as stored (or about to be, with the next flush)
    /// under that key, which deltas are computed against (see [`delta`]).
    bases: RwLock<HashMap<Vec<u8>, Base>>,
    field_names: FieldNames,
}

/// A stored message-secrets value and the key its deltas go under.
#[derive(Debug)]
struct Base {
    value: Vec<u8>,
    delta_key: Vec<u8>,
}

/// The prefixes that hold one group's state, for [`Store::scan_prefixes`](super::Store):
/// its keys and the delta of its message secrets.
pub fn group_load_prefixes(group_id: &openmls::prelude::GroupId) -> [Vec<u8>; 2] {
    [
        group_prefix(group_id),
        delta::delta_key(group_id.as_slice()),
    ]
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

    /// Seeds the cache from entries previously written under [`MLS_PREFIX`]; not marked dirty.
    /// A stored delta is applied to its base; one that does not fit drops the value, so the
    /// group fails to load rather than reuse an old ratchet.
    pub fn load(&self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
        let mut bases = self.bases.write().expect("poisoned");
        let mut values = self.values.write().expect("poisoned");
        let mut deltas = Vec::new();
        for (k, v) in entries {
            if k.starts_with(DELTA_PREFIX) {
                deltas.push((k, v));
            } else if k.starts_with(MLS_PREFIX) {
                values.insert(k, v);
            }
        }
        for (delta_key, delta) in deltas {
            let Some(key) = delta::base_key_of(&delta_key) else {
                continue;
            };
            let Some(base) = values.get(&key).cloned() else {
                continue;
            };
            match delta::apply(&base, &delta) {
                Some(value) => {
                    values.insert(key.clone(), value);
                    bases.insert(
                        key,
                        Base {
                            value: base,
                            delta_key,
                        },
                    );
                }
                None => {
                    tracing::error!("stored message secrets do not match their delta");
                    values.remove(&key);
                }
            }
        }
    }

    /// Removes and returns every change since the previous call, ready for
    /// [`Store::write_batch`](super::Store::write_batch).
    pub fn take_dirty(&self) -> WriteBatch {
        std::mem::take(&mut *self.dirty.write().expect("poisoned"))
            .into_iter()
            .collect()
    }

    /// Puts changes back after a failed flush, unless newer ones superseded them.
    pub fn restore_dirty(&self, batch: WriteBatch) {
        let mut dirty = self.dirty.write().expect("poisoned");
        for (k, v) in batch {
            dirty.entry(k).or_insert(v);
        }
    }

    /// Drops cached entries under `prefix` that are already durable (not dirty). Used to
    /// release an idle group's state from memory; it reloads from the store on next use.
    pub fn forget_prefix(&self, prefix: &[u8]) {
        let mut bases = self.bases.write().expect("poisoned");
        let mut values = self.values.write().expect("poisoned");
        let dirty = self.dirty.read().expect("poisoned");
        values.retain(|k, _| !k.starts_with(prefix) || dirty.contains_key(k));
        bases.retain(|k, b| {
            !k.starts_with(prefix) || dirty.contains_key(k) || dirty.contains_key(&b.delta_key)
        });
    }

    /// Number of entries held (for tests and sizing).
    pub fn len(&self) -> usize {
        self.values.read().expect("poisoned").len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_raw(&self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let mut values = self.values.write().expect("poisoned");
        match &value {
            Some(v) => values.insert(key.clone(), v.clone()),
            None => values.remove(&key),
        };
        self.dirty.write().expect("poisoned").insert(key, value);
    }

    fn put<K: StoreKey, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        let key = key.encode(label)?;
        let value = encode(value, self.field_names)?;
        if label == MESSAGE_SECRETS {
            self.put_secrets(key, value);
        } else {
            self.set_raw(key, Some(value));
        }
        Ok(())
    }

    /// Stores message secrets as a delta against their base when the change is small, else
    /// as a new base with an empty delta (see [`delta`]).
    fn put_secrets(&self, key: Vec<u8>, value: Vec<u8>) {
        let mut bases = self.bases.write().expect("poisoned");
        let mut values = self.values.write().expect("poisoned");
        let mut dirty = self.dirty.write().expect("poisoned");
        if let Some(base) = bases.get(&key) {
            if let Some(d) = delta::diff(&base.value, &value) {
                dirty.insert(base.delta_key.clone(), Some(d));
                values.insert(key, value);
                return;
            }
        }
        match delta::delta_key_of(&key) {
            Some(delta_key) => {
                dirty.insert(delta_key.clone(), Some(delta::unchanged(&value)));
                bases.insert(
                    key.clone(),
                    Base {
                        value: value.clone(),
                        delta_key,
                    },
                );
            }
            None => {
                bases.remove(&key);
            }
        }
        values.insert(key.clone(), value.clone());
        dirty.insert(key, Some(value));
    }

    fn get<K: StoreKey, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Option<V>, MlsStorageError> {
        let key = key.encode(label)?;
        let values = self.values.read().expect("poisoned");
        values.get(&key).map(|v| decode(v)).transpose()
    }

    fn delete<K: StoreKey>(&self, label: &str, key: &K) -> Result<(), MlsStorageError> {
        let key = key.encode(label)?;
        if label == MESSAGE_SECRETS {
            let base = self.bases.write().expect("poisoned").remove(&key);
            if let Some(delta_key) = base
                .map(|b| b.delta_key)
                .or_else(|| delta::delta_key_of(&key))
            {
                self.set_raw(delta_key, None);
            }
        }
        self.set_raw(key, None);
        Ok(())
    }

    fn list_get<K: StoreKey, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Vec<V>, MlsStorageError> {
        let raw: Vec<serde_json::Value> = self.get(label, key)?.unwrap_or_default();
        raw.into_iter()
            .map(|v| serde_json::from_value(v).map_err(Into::into))
            .collect()
    }

    fn list_push<K: StoreKey, V: Serialize>(
        &self,
        label: &str,
        key: &K,
        item: &V,
    ) -> Result<(), MlsStorageError> {
        let mut raw: Vec<serde_json::Value> = self.get(label, key)?.unwrap_or_default();
        raw.push(serde_json::to_value(item)?);
        self.put(label, key, &raw)
    }

    fn list_remove<K: StoreKey, V: Serialize>(
        &self,
        label: &str,
        key: &K,
        item: &V,
    ) -> Result<(), MlsStorageError> {
        let mut raw: Vec<serde_json::Value> = self.get(label, key)?.unwrap_or_default();
        let item = serde_json::to_value(item)?;
        raw.retain(|v| v != &item);
        self.put(label, key, &raw)
    }
}

#[cfg(test)]
mod tests;
