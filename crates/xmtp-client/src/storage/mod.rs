//! Durable client state behind a small key/value [`Store`] trait.
//!
//! Two implementations ship here: [`MemoryStore`] (tests, throwaway senders) and [`RedbStore`]
//! (a single-file ACID database). The service can implement [`Store`] on its own database.
//! openmls's state lives in [`MlsStorage`], an in-memory write-through cache whose changes are
//! drained with [`MlsStorage::take_dirty`] and written in one [`Store::write_batch`].
//!
//! # Crash-safe ordering
//!
//! Every operation that advances MLS state (creating a group, merging a commit, encrypting an
//! application message) first changes [`MlsStorage`] in memory, then the client writes the
//! dirty entries to the [`Store`] atomically, and **only then** publishes the resulting
//! ciphertext. A crash before the write loses nothing that was ever published: on restart the
//! old state is loaded and the operation is redone from scratch (new ratchet generation, new
//! commit). A crash after the write but before the publish leaves a consumed ratchet generation
//! or an unpublished commit: for application messages this only skips a generation (receivers
//! tolerate gaps), and no key/nonce is ever reused because the advanced secret tree is what was
//! persisted. For a DM-creating commit the group is stored as "unpublished" and the creation is
//! redone with a new group on retry, so the network never sees two commits for one epoch.

mod kv;
mod mls;

pub use kv::{MemoryStore, RedbStore, Store, StoreError};
pub use mls::{
    group_load_prefixes, group_prefix, MlsStorage, MlsStorageError, MLS_GLOBAL_PREFIX, MLS_PREFIX,
};
