//! `impl StorageProvider for MlsStorage`: ~50 accessors, each one put/get/delete of a serde
//! value under one label. Mechanical by design; the logic lives in the parent module.

use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};

use super::*;

/// `write_*`: one value per group under a label.
macro_rules! group_writes {
    ($($name:ident($V:ident) => $label:ident;)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, $V: traits::$V<CURRENT_VERSION>>(
            &self,
            group_id: &GroupId,
            value: &$V,
        ) -> Result<(), Self::Error> {
            self.put($label, &G(group_id, ()), value)
        }
    )*};
}

/// Readers of the values [`group_writes`] stores.
macro_rules! group_reads {
    ($($name:ident($V:ident) => $label:ident;)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, $V: traits::$V<CURRENT_VERSION>>(
            &self,
            group_id: &GroupId,
        ) -> Result<Option<$V>, Self::Error> {
            self.get($label, &G(group_id, ()))
        }
    )*};
}

/// `delete_*`: drops one group's value under a label.
macro_rules! group_deletes {
    ($($name:ident => $label:ident;)*) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>>(
            &self,
            group_id: &GroupId,
        ) -> Result<(), Self::Error> {
            self.delete($label, &G(group_id, ()))
        }
    )*};
}

// The trait is ~50 accessor methods; each maps to put/get/delete under one label.
impl StorageProvider<CURRENT_VERSION> for MlsStorage {
    type Error = MlsStorageError;

    group_writes! {
        write_mls_join_config(MlsGroupJoinConfig) => JOIN_CONFIG;
        write_tree(TreeSync) => TREE;
        write_interim_transcript_hash(InterimTranscriptHash) => INTERIM_TRANSCRIPT_HASH;
        write_context(GroupContext) => CONTEXT;
        write_confirmation_tag(ConfirmationTag) => CONFIRMATION_TAG;
        write_message_secrets(MessageSecrets) => MESSAGE_SECRETS;
        write_resumption_psk_store(ResumptionPskStore) => RESUMPTION_PSK;
        write_own_leaf_index(LeafNodeIndex) => OWN_LEAF_INDEX;
        write_group_epoch_secrets(GroupEpochSecrets) => EPOCH_SECRETS;
    }

    group_reads! {
        mls_group_join_config(MlsGroupJoinConfig) => JOIN_CONFIG;
        tree(TreeSync) => TREE;
        group_context(GroupContext) => CONTEXT;
        interim_transcript_hash(InterimTranscriptHash) => INTERIM_TRANSCRIPT_HASH;
        confirmation_tag(ConfirmationTag) => CONFIRMATION_TAG;
        message_secrets(MessageSecrets) => MESSAGE_SECRETS;
        resumption_psk_store(ResumptionPskStore) => RESUMPTION_PSK;
        own_leaf_index(LeafNodeIndex) => OWN_LEAF_INDEX;
        group_epoch_secrets(GroupEpochSecrets) => EPOCH_SECRETS;
    }

    group_deletes! {
        delete_own_leaf_nodes => OWN_LEAF_NODES;
        delete_group_config => JOIN_CONFIG;
        delete_tree => TREE;
        delete_confirmation_tag => CONFIRMATION_TAG;
        delete_group_state => GROUP_STATE;
        delete_context => CONTEXT;
        delete_interim_transcript_hash => INTERIM_TRANSCRIPT_HASH;
        delete_message_secrets => MESSAGE_SECRETS;
        delete_all_resumption_psk_secrets => RESUMPTION_PSK;
        delete_own_leaf_index => OWN_LEAF_INDEX;
        delete_group_epoch_secrets => EPOCH_SECRETS;
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<(), Self::Error> {
        self.list_push(OWN_LEAF_NODES, &G(group_id, ()), leaf_node)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<(), Self::Error> {
        self.put(PROPOSAL, &G(group_id, proposal_ref), proposal)?;
        self.list_push(PROPOSAL_REFS, &G(group_id, ()), proposal_ref)
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<(), Self::Error> {
        self.put(GROUP_STATE, &G(group_id, ()), group_state)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<(), Self::Error> {
        self.put(SIGNATURE_KEY, &Gl(public_key), signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<(), Self::Error> {
        self.put(ENCRYPTION_KEY, &Gl(public_key), key_pair)
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
        self.put(
            EPOCH_KEY_PAIRS,
            &G(group_id, (epoch, leaf_index)),
            &key_pairs,
        )
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<(), Self::Error> {
        self.put(KEY_PACKAGE, &Gl(hash_ref), key_package)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<(), Self::Error> {
        self.put(PSK, &Gl(psk_id), psk)
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, Self::Error> {
        self.list_get(OWN_LEAF_NODES, &G(group_id, ()))
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, Self::Error> {
        self.list_get(PROPOSAL_REFS, &G(group_id, ()))
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, Self::Error> {
        let refs: Vec<ProposalRef> = self.list_get(PROPOSAL_REFS, &G(group_id, ()))?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some(p) = self.get(PROPOSAL, &G(group_id, &r))? {
                out.push((r, p));
            }
        }
        Ok(out)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>, Self::Error> {
        self.get(GROUP_STATE, &G(group_id, ()))
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, Self::Error> {
        self.get(SIGNATURE_KEY, &Gl(public_key))
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>, Self::Error> {
        self.get(ENCRYPTION_KEY, &Gl(public_key))
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
        Ok(self
            .get(EPOCH_KEY_PAIRS, &G(group_id, (epoch, leaf_index)))?
            .unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, Self::Error> {
        self.get(KEY_PACKAGE, &Gl(hash_ref))
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>, Self::Error> {
        self.get(PSK, &Gl(psk_id))
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<(), Self::Error> {
        self.list_remove(PROPOSAL_REFS, &G(group_id, ()), proposal_ref)?;
        self.delete(PROPOSAL, &G(group_id, proposal_ref))
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        let refs: Vec<ProposalRef> = self.list_get(PROPOSAL_REFS, &G(group_id, ()))?;
        for r in refs {
            self.delete(PROPOSAL, &G(group_id, &r))?;
        }
        self.delete(PROPOSAL_REFS, &G(group_id, ()))
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<(), Self::Error> {
        self.delete(SIGNATURE_KEY, &Gl(public_key))
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<(), Self::Error> {
        self.delete(ENCRYPTION_KEY, &Gl(public_key))
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
        self.delete(EPOCH_KEY_PAIRS, &G(group_id, (epoch, leaf_index)))
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), Self::Error> {
        self.delete(KEY_PACKAGE, &Gl(hash_ref))
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskKey,
    ) -> Result<(), Self::Error> {
        self.delete(PSK, &Gl(psk_id))
    }
}
