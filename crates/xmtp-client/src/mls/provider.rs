//! The openmls provider: [`XmtpCrypto`] (RustCrypto with aws-lc X25519 and ChaCha20-Poly1305) for crypto, RustCrypto
//! for randomness, [`MlsStorage`] for state.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use super::crypto::XmtpCrypto;
use crate::storage::MlsStorage;

/// Crypto plus the write-through state cache that one client uses for all its groups.
#[derive(Debug, Default)]
pub struct XmtpProvider {
    crypto: XmtpCrypto,
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
            crypto: XmtpCrypto::default(),
            storage,
        }
    }
}

impl OpenMlsProvider for XmtpProvider {
    type CryptoProvider = XmtpCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage;

    fn storage(&self) -> &MlsStorage {
        &self.storage
    }

    fn crypto(&self) -> &XmtpCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        self.crypto.rust()
    }
}
