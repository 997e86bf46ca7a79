//! [`MlsStorage`]'s entity access by key: what its openmls storage provider implementation
//! (`provider_impl.rs`) calls to read, write and delete entities and entity lists.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{decode, encode, EntityKey, MlsStorage, MlsStorageError, Place, State};

impl MlsStorage {
    pub(super) fn put<K: EntityKey, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        let place = key.place(label)?;
        let value = encode(value, self.field_names)?;
        let mut state = self.state.write().expect("poisoned");
        match place {
            Place::Global(key) => {
                state.global.insert(key.clone(), value.clone());
                state.pending.insert(key, Some(value));
            }
            Place::Group { group, name } => {
                let State {
                    groups,
                    dirty_groups,
                    ..
                } = &mut *state;
                let entry = match groups.get_mut(&group) {
                    Some(entry) => entry,
                    None => groups.entry(group.clone()).or_default(),
                };
                entry.put(name, value);
                if entry.is_dirty() && !dirty_groups.contains(&group) {
                    dirty_groups.insert(group);
                }
            }
        }
        Ok(())
    }

    pub(super) fn get<K: EntityKey, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Option<V>, MlsStorageError> {
        let place = key.place(label)?;
        let state = self.state.read().expect("poisoned");
        let raw = match &place {
            Place::Global(key) => state.global.get(key),
            Place::Group { group, name } => {
                state.groups.get(group).and_then(|g| g.entries.get(name))
            }
        };
        raw.map(|v| decode(v)).transpose()
    }

    pub(super) fn delete<K: EntityKey>(&self, label: &str, key: &K) -> Result<(), MlsStorageError> {
        let place = key.place(label)?;
        let mut state = self.state.write().expect("poisoned");
        match place {
            Place::Global(key) => {
                state.global.remove(&key);
                state.pending.insert(key, None);
            }
            Place::Group { group, name } => {
                let State {
                    groups,
                    dirty_groups,
                    ..
                } = &mut *state;
                if let Some(entry) = groups.get_mut(&group) {
                    entry.delete(&name);
                    if entry.is_dirty() {
                        dirty_groups.insert(group);
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn list_get<K: EntityKey, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Vec<V>, MlsStorageError> {
        let raw: Vec<serde_json::Value> = self.get(label, key)?.unwrap_or_default();
        raw.into_iter()
            .map(|v| serde_json::from_value(v).map_err(Into::into))
            .collect()
    }

    pub(super) fn list_push<K: EntityKey, V: Serialize>(
        &self,
        label: &str,
        key: &K,
        item: &V,
    ) -> Result<(), MlsStorageError> {
        let mut raw: Vec<serde_json::Value> = self.get(label, key)?.unwrap_or_default();
        raw.push(serde_json::to_value(item)?);
        self.put(label, key, &raw)
    }

    pub(super) fn list_remove<K: EntityKey, V: Serialize>(
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
