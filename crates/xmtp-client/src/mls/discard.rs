//! [`CreationProvider`]: openmls crypto with a storage that keeps only key pairs, for the steps
//! of a DM's creation whose other state is superseded before anyone could load it.
//!
//! Building a group stores its whole epoch-0 state, and staging the add commit stores the
//! pending commit (the staged diff and the next epoch's secrets); merging the commit then
//! rewrites every one of those entities for epoch 1. A new DM is never loaded between the two
//! (the caller owns the group in memory and persists only after the merge), so encoding the
//! epoch-0 state was wasted work. With this provider the group is built and its commit staged
//! storing only the creator's leaf key pair (in the real storage: the merge carries it into
//! epoch 1); the merge then runs on the real provider, which stores the complete epoch-1 state
//! (see [`super::dm::create_dm`]).
//!
//! Other reads find nothing, as in a fresh store: the group id is new, and the add commit
//! loads no pre-shared keys or queued proposals.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use openmls_traits::OpenMlsProvider;

use super::crypto::XmtpCrypto;
use super::provider::XmtpProvider;
use crate::storage::{MlsStorage, MlsStorageError};

/// Crypto and randomness of an [`XmtpProvider`], storage reduced to its key pairs.
#[derive(Debug)]
pub struct CreationProvider<'a> {
    crypto: &'a XmtpCrypto,
    storage: KeyPairsOnly<'a>,
}

impl<'a> CreationProvider<'a> {
    /// Borrows `provider`'s crypto (so randomness comes from the same source) and storage.
    pub fn new(provider: &'a XmtpProvider) -> Self {
        Self {
            crypto: provider.crypto(),
            storage: KeyPairsOnly(provider.storage()),
        }
    }
}

impl<'a> OpenMlsProvider for CreationProvider<'a> {
    type CryptoProvider = XmtpCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = KeyPairsOnly<'a>;

    fn storage(&self) -> &KeyPairsOnly<'a> {
        &self.storage
    }

    fn crypto(&self) -> &XmtpCrypto {
        self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        self.crypto.rust()
    }
}

/// A `StorageProvider` that passes a group's epoch key pairs to an [`MlsStorage`] and drops
/// every other write (finding nothing on read).
#[derive(Debug, Clone, Copy)]
pub struct KeyPairsOnly<'a>(&'a MlsStorage);

/// `write_*(group_id, value)`: dropped.
macro_rules! group_writes {
    ($($name:ident($V:ident);)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, $V: traits::$V<CURRENT_VERSION>>(
            &self,
            _group_id: &GroupId,
            _value: &$V,
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    )*};
}

/// Per-group readers: nothing stored.
macro_rules! group_reads {
    ($($name:ident($V:ident);)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, $V: traits::$V<CURRENT_VERSION>>(
            &self,
            _group_id: &GroupId,
        ) -> Result<Option<$V>, Self::Error> {
            Ok(None)
        }
    )*};
}

/// Per-group deletes: nothing to delete.
macro_rules! group_deletes {
    ($($name:ident;)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>>(
            &self,
            _group_id: &GroupId,
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    )*};
}

/// Writers keyed by something other than a group: dropped.
macro_rules! keyed_writes {
    ($($name:ident($K:ident, $V:ident);)*) => {$(
        fn $name<$K: traits::$K<CURRENT_VERSION>, $V: traits::$V<CURRENT_VERSION>>(
            &self,
            _key: &$K,
            _value: &$V,
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    )*};
}

/// Readers keyed by something other than a group, value type first: nothing stored.
macro_rules! keyed_reads {
    ($($name:ident($V:ident, $K:ident);)*) => {$(
        fn $name<$V: traits::$V<CURRENT_VERSION>, $K: traits::$K<CURRENT_VERSION>>(
            &self,
            _key: &$K,
        ) -> Result<Option<$V>, Self::Error> {
            Ok(None)
        }
    )*};
}

/// Deletes keyed by something other than a group: nothing to delete.
macro_rules! keyed_deletes {
    ($($name:ident($K:ident);)*) => {$(
        fn $name<$K: traits::$K<CURRENT_VERSION>>(&self, _key: &$K) -> Result<(), Self::Error> {
            Ok(())
        }
    )*};
}

impl StorageProvider<CURRENT_VERSION> for KeyPairsOnly<'_> {
    type Error = MlsStorageError;

    group_writes! {
        write_mls_join_config(MlsGroupJoinConfig);
        append_own_leaf_node(LeafNode);
        write_tree(TreeSync);
        write_interim_transcript_hash(InterimTranscriptHash);
        write_context(GroupContext);
        write_confirmation_tag(ConfirmationTag);
        write_message_secrets(MessageSecrets);
        write_resumption_psk_store(ResumptionPskStore);
        write_own_leaf_index(LeafNodeIndex);
        write_group_epoch_secrets(GroupEpochSecrets);
    }

    group_reads! {
        mls_group_join_config(MlsGroupJoinConfig);
        tree(TreeSync);
        group_context(GroupContext);
        interim_transcript_hash(InterimTranscriptHash);
        confirmation_tag(ConfirmationTag);
        message_secrets(MessageSecrets);
        resumption_psk_store(ResumptionPskStore);
        own_leaf_index(LeafNodeIndex);
        group_epoch_secrets(GroupEpochSecrets);
    }

    group_deletes! {
        delete_own_leaf_nodes;
        delete_group_config;
        delete_tree;
        delete_confirmation_tag;
        delete_group_state;
        delete_context;
        delete_interim_transcript_hash;
        delete_message_secrets;
        delete_all_resumption_psk_secrets;
        delete_own_leaf_index;
        delete_group_epoch_secrets;
    }

    keyed_writes! {
        write_signature_key_pair(SignaturePublicKey, SignatureKeyPair);
        write_encryption_key_pair(EncryptionKey, HpkeKeyPair);
        write_key_package(HashReference, KeyPackage);
        write_psk(PskId, PskBundle);
    }

    keyed_reads! {
        encryption_key_pair(HpkeKeyPair, EncryptionKey);
        psk(PskBundle, PskId);
    }

    keyed_deletes! {
        delete_signature_key_pair(SignaturePublicKey);
        delete_encryption_key_pair(EncryptionKey);
        delete_key_package(HashReference);
        delete_psk(PskId);
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        _group_state: &GroupState,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Option<GroupState>, Self::Error> {
        Ok(None)
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        _public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, Self::Error> {
        Ok(None)
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        _hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, Self::Error> {
        Ok(None)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        _proposal_ref: &ProposalRef,
        _proposal: &QueuedProposal,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<(), Self::Error> {
        self.0
            .write_encryption_epoch_key_pairs(group_id, epoch, leaf_index, key_pairs)
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, Self::Error> {
        Ok(Vec::new())
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, Self::Error> {
        Ok(Vec::new())
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, Self::Error> {
        Ok(Vec::new())
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>, Self::Error> {
        self.0
            .encryption_epoch_key_pairs(group_id, epoch, leaf_index)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        _proposal_ref: &ProposalRef,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        self.0
            .delete_encryption_epoch_key_pairs(group_id, epoch, leaf_index)
    }
}
