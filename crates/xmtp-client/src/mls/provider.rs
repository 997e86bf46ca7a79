//! The openmls provider: RustCrypto for crypto and randomness, [`MlsStorage`] for state.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use crate::storage::MlsStorage;

/// Crypto plus the write-through state cache that one client uses for all its groups.
#[derive(Debug, Default)]
pub struct XmtpProvider {
    crypto: RustCrypto,
    storage: MlsStorage,
}

impl XmtpProvider {
    /// A provider over an empty state cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider over `storage` (e.g. one that writes an earlier encoding).
    pub fn with_storage(storage: MlsStorage) -> Self {
        Self {
            crypto: RustCrypto::default(),
            storage,
        }
    }
}

impl OpenMlsProvider for XmtpProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage;

    fn storage(&self) -> &MlsStorage {
        &self.storage
    }

    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}
