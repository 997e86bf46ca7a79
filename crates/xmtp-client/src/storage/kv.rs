//! The [`Store`] trait and its two implementations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, TableDefinition};

/// A batch of writes: `Some(value)` upserts, `None` deletes.
pub type WriteBatch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Errors from a [`Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing database failed (I/O, corruption). Retryable: the write was not applied.
    #[error("state store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether the failed operation may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }

    fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Byte-keyed storage for client and MLS state. `write_batch` must be atomic and durable when
/// it returns: the client publishes ciphertext only after it succeeds.
#[async_trait]
pub trait Store: Send + Sync {
    /// Reads one value.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All entries whose key starts with `prefix`, in key order.
    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Entries under any of `prefixes`, in no particular order. A store behind a database
    /// should answer in one query: the client loads hundreds of groups per send round.
    async fn scan_prefixes(
        &self,
        prefixes: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for prefix in prefixes {
            out.extend(self.scan_prefix(prefix).await?);
        }
        Ok(out)
    }
    /// Applies all writes atomically and durably. Borrowed: the caller keeps the batch to
    /// retry it after a failure (a send round's batch is ~1.5 MB of group state).
    async fn write_batch(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError>;
}

/// A [`Store`] in process memory; nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().expect("poisoned").get(key).cloned())
    }

    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let map = self.map.lock().expect("poisoned");
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn write_batch(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let mut map = self.map.lock().expect("poisoned");
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        Ok(())
    }
}

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("xmtp_client_state");

/// A [`Store`] in one redb file. Each `write_batch` is one fsynced transaction.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(StoreError::backend)?;
        // Create the table up front so reads on a fresh file do not fail.
        let tx = db.begin_write().map_err(StoreError::backend)?;
        tx.open_table(TABLE).map_err(StoreError::backend)?;
        tx.commit().map_err(StoreError::backend)?;
        Ok(Self { db: Arc::new(db) })
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::backend)?;
        let table = tx.open_table(TABLE).map_err(StoreError::backend)?;
        let value = table.get(key).map_err(StoreError::backend)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::backend)?;
        let table = tx.open_table(TABLE).map_err(StoreError::backend)?;
        let mut out = Vec::new();
        for entry in table.range(prefix..).map_err(StoreError::backend)? {
            let (k, v) = entry.map_err(StoreError::backend)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    async fn write_batch(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        let db = self.db.clone();
        // redb commits fsync; keep that off the async worker threads.
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_write().map_err(StoreError::backend)?;
            {
                let mut table = tx.open_table(TABLE).map_err(StoreError::backend)?;
                for (k, v) in &batch {
                    match v {
                        Some(v) => table.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                        None => table.remove(k.as_slice()).map(|_| ()),
                    }
                    .map_err(StoreError::backend)?;
                }
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: &dyn Store) {
        store
            .write_batch(&[
                (b"a/1".to_vec(), Some(b"x".to_vec())),
                (b"a/2".to_vec(), Some(b"y".to_vec())),
                (b"b/1".to_vec(), Some(b"z".to_vec())),
            ])
            .await
            .unwrap();
        store.write_batch(&[(b"a/2".to_vec(), None)]).await.unwrap();
        assert_eq!(store.get(b"a/1").await.unwrap(), Some(b"x".to_vec()));
        assert_eq!(store.get(b"a/2").await.unwrap(), None);
        let scanned = store.scan_prefix(b"a/").await.unwrap();
        assert_eq!(scanned, vec![(b"a/1".to_vec(), b"x".to_vec())]);
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        exercise(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn redb_store_round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        exercise(&RedbStore::open(&path).unwrap()).await;
        let reopened = RedbStore::open(&path).unwrap();
        assert_eq!(reopened.get(b"b/1").await.unwrap(), Some(b"z".to_vec()));
    }
}
