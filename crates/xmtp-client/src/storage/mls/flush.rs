//! Between memory and the store: [`MlsStorage::load`] seeds the cache from stored entries,
//! [`MlsStorage::take_dirty`] drains the changes into one write batch (bundles, deltas, keys),
//! [`MlsStorage::restore_dirty`] puts back a batch that failed to write,
//! [`MlsStorage::forget_group`] drops a group held in memory, and [`MlsStorage::hold_group`]
//! keeps a group being created out of flushes.

use super::*;

impl MlsStorage {
    /// Seeds the cache from entries previously written under [`MLS_PREFIX`]; not marked dirty
    /// (except groups stored in the per-entity layout, written back as bundles with the next
    /// flush). A group with unflushed changes keeps them: memory is newer than the store. A
    /// stored delta is applied to its base; one that does not fit drops the message secrets,
    /// and a bundle that does not decode drops its group, so the group fails to load rather
    /// than reuse an old ratchet.
    pub fn load(&self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
        let mut loaded: HashMap<Vec<u8>, Group> = HashMap::new();
        let mut bundles = Vec::new();
        let mut deltas = Vec::new();
        let mut global = Vec::new();
        for (k, v) in entries {
            if let Some(rest) = k.strip_prefix(GROUP_KEYS) {
                let Some(slash) = rest.iter().position(|b| *b == b'/') else {
                    continue;
                };
                let Ok(json) = hex::decode(&rest[..slash]) else {
                    continue;
                };
                let name = &rest[slash + 1..];
                if name == BUNDLE_NAME {
                    bundles.push((json, v));
                } else {
                    let group = loaded.entry(json).or_default();
                    group.entries.insert(name.to_vec(), v);
                    group.legacy.push(k);
                }
            } else if k.starts_with(DELTA_PREFIX) {
                deltas.push((k, v));
            } else if k.starts_with(MLS_PREFIX) {
                global.push((k, v));
            }
        }
        for (json, value) in bundles {
            let group = loaded.entry(json).or_default();
            // The bundle is what was last written; per-entity keys beside it are leftovers.
            group.entries.clear();
            match bundle::decode(&value) {
                Some(entries) => group.entries.extend(entries),
                None => tracing::error!("a stored MLS group bundle does not decode"),
            }
        }
        for group in loaded.values_mut() {
            group.base = group.entries.get(SECRETS_NAME).cloned();
        }
        for (delta_key, d) in deltas {
            let Some(json) = delta::group_json_of(&delta_key) else {
                continue;
            };
            let Some(group) = loaded.get_mut(&json) else {
                continue;
            };
            group.delta_key = Some(delta_key);
            let Some(base) = &group.base else {
                continue;
            };
            match delta::apply(base, &d) {
                Some(value) => {
                    group.entries.insert(SECRETS_NAME.to_vec(), value);
                }
                None => {
                    tracing::error!("stored message secrets do not match their delta");
                    group.entries.remove(SECRETS_NAME);
                    group.base = None;
                }
            }
        }
        let mut state = self.state.write().expect("poisoned");
        state.global.extend(global);
        for (json, mut group) in loaded {
            if state.unflushed(&json) {
                continue;
            }
            if !group.legacy.is_empty() {
                group.rewrite = true;
                state.dirty_groups.insert(json.clone());
            }
            state.groups.insert(json, group);
        }
    }

    /// Removes and returns every change since the previous call, ready for
    /// [`Store::write_batch`](crate::storage::Store::write_batch): per changed group its bundle (with
    /// deletes of its per-entity keys, if it was loaded from those) and/or its delta.
    pub fn take_dirty(&self) -> WriteBatch {
        let mut state = self.state.write().expect("poisoned");
        let State {
            groups,
            dirty_groups,
            pending,
            held,
            ..
        } = &mut *state;
        let dirty: Vec<Vec<u8>> = if held.is_empty() {
            dirty_groups.drain().collect()
        } else {
            let all: Vec<Vec<u8>> = dirty_groups.drain().collect();
            let (kept, dirty): (Vec<_>, Vec<_>) =
                all.into_iter().partition(|json| held.contains(json));
            dirty_groups.extend(kept);
            dirty
        };
        for json in dirty {
            let Some(group) = groups.get_mut(&json) else {
                continue;
            };
            if std::mem::take(&mut group.rewrite) {
                let mut key = group_prefix_from_json(&json);
                key.extend_from_slice(BUNDLE_NAME);
                let value =
                    (!group.entries.is_empty()).then(|| bundle::encode(group.stored_entries()));
                pending.insert(key, value);
                for old in group.legacy.drain(..) {
                    pending.insert(old, None);
                }
            }
            if let Some(d) = group.delta.take() {
                if group.delta_key.is_none() {
                    group.delta_key = raw_group_id(&json).map(|raw| delta::delta_key(&raw));
                }
                if let Some(key) = &group.delta_key {
                    pending.insert(key.clone(), d);
                }
            }
            if group.entries.is_empty() {
                groups.remove(&json);
            }
        }
        std::mem::take(pending).into_iter().collect()
    }

    /// Puts changes back after a failed flush, unless newer ones superseded them (a group
    /// changed since writes its rows anew with the next flush).
    pub fn restore_dirty(&self, batch: WriteBatch) {
        let mut state = self.state.write().expect("poisoned");
        for (k, v) in batch {
            state.pending.entry(k).or_insert(v);
        }
    }

    /// Leaves the group out of flushes until [`MlsStorage::release_group`]: a DM being
    /// created holds only its configuration and leaf key pair until its commit is merged, and
    /// writing that (a row per DM, rewritten by the merge) is wasted work, or an orphan if the
    /// creation is given up. Call before the group's first write.
    pub fn hold_group(&self, group_id: &openmls::prelude::GroupId) {
        let json = serde_json::to_vec(group_id).expect("group ids serialize");
        self.state.write().expect("poisoned").held.insert(json);
    }

    /// Lets the next flush write a held group (its changes so far included).
    pub fn release_group(&self, group_id: &openmls::prelude::GroupId) {
        let json = serde_json::to_vec(group_id).expect("group ids serialize");
        self.state.write().expect("poisoned").held.remove(&json);
    }

    /// Drops a held group (a creation given up) from memory: nothing of it was written.
    pub fn discard_group(&self, group_id: &openmls::prelude::GroupId) {
        let json = serde_json::to_vec(group_id).expect("group ids serialize");
        let mut state = self.state.write().expect("poisoned");
        if state.held.remove(&json) {
            state.groups.remove(&json);
            state.dirty_groups.remove(&json);
        }
    }

    /// Drops a group's state from memory if it is durable (nothing of it waits for a flush).
    /// Used to release an idle group; it reloads from the store on next use.
    pub fn forget_group(&self, group_id: &openmls::prelude::GroupId) {
        let json = serde_json::to_vec(group_id).expect("group ids serialize");
        let mut state = self.state.write().expect("poisoned");
        if !state.unflushed(&json) {
            state.groups.remove(&json);
        }
    }
}
