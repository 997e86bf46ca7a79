//! Resident DM groups: loading openmls state from the store in bulk, and releasing it.

use openmls::prelude::{GroupId, MlsGroup};

use super::{parallel, Client, DmBook};
use crate::error::ClientError;
use crate::storage::group_load_prefixes;
use openmls_traits::OpenMlsProvider as _;

/// Groups loaded per store query.
const LOAD_CHUNK: usize = 500;

impl Client {
    /// Flushes state, then drops every resident DM group from memory (they reload on next
    /// use). Lets a long-running sender bound its memory between batches; returns how many
    /// groups were released.
    pub async fn release_groups(&self) -> Result<usize, ClientError> {
        let mut book = self.book.lock().await;
        self.persist(Vec::new()).await?;
        let released = book.groups.len();
        for (gid, _) in book.groups.drain() {
            self.provider
                .storage()
                .forget_group(&GroupId::from_slice(&gid));
        }
        Ok(released)
    }

    /// Number of DM groups currently resident in memory.
    pub async fn resident_groups(&self) -> usize {
        self.book.lock().await.groups.len()
    }

    /// Makes the group resident: loads its openmls state from the store on first use.
    pub(super) async fn ensure_group(
        &self,
        book: &mut DmBook,
        group_id: &[u8],
    ) -> Result<(), ClientError> {
        self.ensure_groups(book, std::slice::from_ref(&group_id.to_vec()))
            .await
    }

    /// [`Client::ensure_group`] for many groups: the missing ones are read with one
    /// [`Store::scan_prefixes`] per [`LOAD_CHUNK`] and deserialized on all cores. Loading
    /// them one query at a time cost more than the rest of a repeat send round.
    pub(super) async fn ensure_groups(
        &self,
        book: &mut DmBook,
        group_ids: &[Vec<u8>],
    ) -> Result<(), ClientError> {
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<GroupId> = group_ids
            .iter()
            .filter(|g| !book.groups.contains_key(*g) && seen.insert(*g))
            .map(|g| GroupId::from_slice(g))
            .collect();
        for chunk in missing.chunks(LOAD_CHUNK) {
            let prefixes: Vec<Vec<u8>> = chunk.iter().flat_map(group_load_prefixes).collect();
            self.provider
                .storage()
                .load(self.store.scan_prefixes(&prefixes).await?);
            let loaded = parallel::map(chunk, |gid| {
                MlsGroup::load(self.provider.storage(), gid)
                    .map_err(|e| ClientError::CorruptState(e.to_string()))?
                    .ok_or_else(|| {
                        ClientError::CorruptState(format!(
                            "no state for group {}",
                            hex::encode(gid.as_slice())
                        ))
                    })
            });
            for (gid, group) in chunk.iter().zip(loaded) {
                book.groups.insert(gid.as_slice().to_vec(), group?);
            }
        }
        Ok(())
    }
}
