//! Why an identity update is invalid.

/// A reason an `IdentityUpdate` (or the log it extends) is rejected.
///
/// Every variant describes bad input, so none is retryable: sending the same update again
/// gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssociationError {
    /// An Ethereum address was not `0x` followed by 40 hex digits.
    #[error("invalid Ethereum address {0:?}: expected 0x followed by 40 hex digits")]
    InvalidAddress(String),
    /// The inbox id is not 64 lowercase hex characters.
    #[error("invalid inbox id {0:?}: expected 64 hex characters")]
    InvalidInboxId(String),
    /// A required proto field was absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// The update carries no actions.
    #[error("identity update has no actions")]
    EmptyUpdate,
    /// Passkeys, smart-contract wallets and legacy v2 keys are not verified by herald.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A signature had the wrong length or encoding.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// A signature did not verify against the update's signature text.
    #[error("signature verification failed")]
    BadSignature,
    /// `CreateInbox` appeared when the inbox already exists.
    #[error("inbox already created")]
    MultipleCreate,
    /// An action other than `CreateInbox` came before the inbox existed.
    #[error("inbox not yet created")]
    NotCreated,
    /// The signer is neither the required member nor the recovery address.
    #[error("signer is not an existing member allowed to sign this action")]
    MissingExistingMember,
    /// The new-member signature was made by someone other than the member being added.
    #[error("new member identifier does not match the signer")]
    NewMemberIdSignatureMismatch,
    /// A member tried to add itself.
    #[error("a member cannot add itself")]
    AddSelf,
    /// An installation tried to add another installation.
    #[error("a {0} may not add a {1}")]
    MemberNotAllowed(&'static str, &'static str),
    /// The signature kind does not fit the member kind (e.g. a wallet signature for an installation).
    #[error("a {1} signature is not allowed for a {0}")]
    SignatureNotAllowed(&'static str, &'static str),
    /// A signature from an earlier update was reused.
    #[error("signature replayed from an earlier identity update")]
    Replay,
    /// The update's inbox id differs from the inbox its actions build.
    #[error("wrong inbox id: update names {claimed}, actions build {actual}")]
    WrongInboxId { claimed: String, actual: String },
}

impl AssociationError {
    /// Invalid updates never become valid by retrying.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
