//! The client's error type, with the retry class of every variant.

use xmtp_proto::associations::AssociationError;

use crate::mls::dm::MlsError;
use crate::mls::welcome::WelcomeWrapError;
use crate::storage::StoreError;
use crate::transport::TransportError;

/// Everything a client operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node call failed; retryable per [`TransportError::is_retryable`].
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The state store failed; retryable (nothing was published).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An MLS operation failed (bad peer data or state bug). Not retryable.
    #[error(transparent)]
    Mls(#[from] MlsError),
    /// Wrapping a welcome failed (bad recipient key). Not retryable.
    #[error(transparent)]
    Welcome(#[from] WelcomeWrapError),
    /// A peer's (or our) identity log failed verification. Not retryable.
    #[error("identity log of inbox {inbox_id} is invalid: {source}")]
    Identity {
        inbox_id: String,
        #[source]
        source: AssociationError,
    },
    /// The inbox has no identity updates on the node. Retryable: it may register later.
    #[error("inbox {0} is not registered")]
    UnknownInbox(String),
    /// The recipient inbox has no installation with a usable key package. Retryable.
    #[error("inbox {0} has no installation with a valid key package")]
    NoKeyPackages(String),
    /// Our inbox already has the maximum number of installations. Not retryable.
    #[error("inbox {inbox_id} already has {count} installations (max 10)")]
    TooManyInstallations { inbox_id: String, count: usize },
    /// The store holds another wallet's installation. Not retryable (configuration error).
    #[error("state store belongs to wallet {stored}, not {given}")]
    WalletMismatch { stored: String, given: String },
    /// Stored client state could not be decoded. Not retryable.
    #[error("stored client state is corrupt: {0}")]
    CorruptState(String),
}

impl ClientError {
    /// Whether retrying the whole operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(e) => e.is_retryable(),
            ClientError::Store(e) => e.is_retryable(),
            ClientError::UnknownInbox(_) | ClientError::NoKeyPackages(_) => true,
            ClientError::Mls(_)
            | ClientError::Welcome(_)
            | ClientError::Identity { .. }
            | ClientError::TooManyInstallations { .. }
            | ClientError::WalletMismatch { .. }
            | ClientError::CorruptState(_) => false,
        }
    }
}
