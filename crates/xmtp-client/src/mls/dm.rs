//! DM group operations on openmls, without any network: create a DM for a set of key
//! packages, add installations later, encrypt application messages, process incoming ones.
//!
//! The caller (the client) persists state and publishes; these functions only compute.

use std::collections::HashMap;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, GroupId, KeyPackage, KeyPackageIn, LeafNodeIndex, MlsGroup,
    MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, PastEpochDeletion, ProcessedMessageContent,
    ProtocolMessage, ProtocolVersion, StagedWelcome, PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
};
use openmls_traits::OpenMlsProvider;
use xmtp_proto::ed25519;

use super::creator_leaf::{with_next_key_pair, CreatorLeaf, LeafSigner};
use super::discard::CreationProvider;
use super::group_ext::{dm_extensions, membership_extension, DmSpec};
use super::keypackage::{
    credential_for, inbox_id_from_identity, leaf_capabilities, leaf_extensions, CIPHERSUITE,
};
use super::provider::XmtpProvider;
use super::signer::InstallationKey;

/// libxmtp keeps secrets of this many past epochs (and so do we).
pub const MAX_PAST_EPOCHS: usize = 3;

/// Errors from MLS group operations. None is retryable as such: they mean bad input from a
/// peer or a state bug; the caller re-syncs or skips.
#[derive(Debug, thiserror::Error)]
pub enum MlsError {
    /// A fetched key package failed to parse or validate.
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(String),
    /// openmls refused an operation.
    #[error("MLS operation failed: {0}")]
    Openmls(String),
    /// Wire bytes failed to (de)serialize.
    #[error("MLS wire codec failed: {0}")]
    Codec(#[from] tls_codec::Error),
}

fn mls_err(e: impl std::fmt::Debug) -> MlsError {
    MlsError::Openmls(format!("{e:?}"))
}

/// Parses and validates a fetched key package and checks that it belongs to `installation`
/// (leaf signature key) and `inbox_id` (credential). Returns it with its init key bytes.
pub fn validate_key_package(
    provider: &XmtpProvider,
    bytes: &[u8],
    installation: &[u8],
    inbox_id: &str,
) -> Result<KeyPackage, MlsError> {
    let kp = KeyPackageIn::tls_deserialize_exact(bytes)?
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(|e| MlsError::InvalidKeyPackage(format!("{e:?}")))?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(MlsError::InvalidKeyPackage("wrong ciphersuite".into()));
    }
    if kp.leaf_node().signature_key().as_slice() != installation {
        return Err(MlsError::InvalidKeyPackage(
            "signature key is not the installation".into(),
        ));
    }
    let cred = BasicCredential::try_from(kp.leaf_node().credential().clone())
        .map_err(|_| MlsError::InvalidKeyPackage("not a basic credential".into()))?;
    if inbox_id_from_identity(cred.identity()).as_deref() != Some(inbox_id) {
        return Err(MlsError::InvalidKeyPackage(
            "credential names another inbox".into(),
        ));
    }
    Ok(kp)
}

/// A fetched key package to validate with [`validate_key_packages`].
#[derive(Debug, Clone, Copy)]
pub struct KeyPackageCheck<'a> {
    /// The TLS-serialized key package.
    pub bytes: &'a [u8],
    /// The installation it was fetched for.
    pub installation: &'a [u8],
    /// The inbox that lists that installation.
    pub inbox_id: &'a str,
}

/// [`validate_key_package`] for many packages, their Ed25519 signatures checked as one batch
/// ([`xmtp_proto::ed25519::batched`]: ~15 instead of ~36 µs a signature; only a package whose
/// own signatures fail is validated again).
pub fn validate_key_packages(
    provider: &XmtpProvider,
    checks: &[KeyPackageCheck<'_>],
) -> Vec<Result<KeyPackage, MlsError>> {
    ed25519::batched(checks, |c| {
        validate_key_package(provider, c.bytes, c.installation, c.inbox_id)
    })
}

/// The messages produced by a membership commit.
#[derive(Debug)]
pub struct CommitOutput {
    /// TLS `MLSMessage(PrivateMessage)` of the commit, for SendGroupMessages.
    pub commit: Vec<u8>,
    /// TLS `MLSMessage(Welcome)` for the added installations (before HPKE wrapping).
    pub welcome: Vec<u8>,
}

/// Creates a DM group whose context already carries the final membership, and the commit that
/// adds every installation in `key_packages`. The commit is left pending: merge it with
/// [`merge_creation`] once the node accepted it, or give the DM up with [`discard_creation`].
///
/// Of the group's state only its configuration and our leaf's key pair are stored now: the
/// epoch-0 state and the pending commit would be superseded by the merge before anything
/// could load them (see [`CreationProvider`]); the merge stores the rest. Until then the
/// group is held out of flushes ([`MlsStorage::hold_group`](crate::storage::MlsStorage)), so a
/// DM built ahead of its creation writes nothing, and one given up leaves nothing behind.
///
/// Our leaf gets a fresh key pair; [`create_dm_sharing_leaf`] gives it the client's current
/// [`CreatorLeaf`].
pub fn create_dm(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    spec: &DmSpec,
    key_packages: &[KeyPackage],
) -> Result<(MlsGroup, CommitOutput), MlsError> {
    create(provider, signer, None, spec, key_packages)
}

/// [`create_dm`] with our leaf taken from `leaf`: the key pair, lifetime and leaf signature
/// every DM created while it is current shares (see [`CreatorLeaf`]).
pub fn create_dm_sharing_leaf(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    leaf: &CreatorLeaf,
    spec: &DmSpec,
    key_packages: &[KeyPackage],
) -> Result<(MlsGroup, CommitOutput), MlsError> {
    create(provider, signer, Some(leaf), spec, key_packages)
}

fn create(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    leaf: Option<&CreatorLeaf>,
    spec: &DmSpec,
    key_packages: &[KeyPackage],
) -> Result<(MlsGroup, CommitOutput), MlsError> {
    let group_id = GroupId::from_slice(&rand::random::<[u8; 16]>());
    provider.storage().hold_group(&group_id);
    let built = build_dm(provider, signer, leaf, spec, key_packages, group_id.clone());
    if built.is_err() {
        provider.storage().discard_group(&group_id);
    }
    built
}

fn build_dm(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    leaf: Option<&CreatorLeaf>,
    spec: &DmSpec,
    key_packages: &[KeyPackage],
    group_id: GroupId,
) -> Result<(MlsGroup, CommitOutput), MlsError> {
    let builder = MlsGroup::builder()
        .with_group_id(group_id)
        .ciphersuite(CIPHERSUITE)
        .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .with_capabilities(leaf_capabilities())
        .with_leaf_node_extensions(leaf_extensions(&spec.creator_inbox_id))
        .map_err(mls_err)?
        .with_group_context_extensions(dm_extensions(spec));
    let credential = credential_for(&spec.creator_inbox_id, signer);
    let scratch = CreationProvider::new(provider);
    let mut group = match leaf {
        None => builder.build(&scratch, signer, credential),
        Some(leaf) => {
            let lease = leaf.lease(provider.crypto()).map_err(mls_err)?;
            with_next_key_pair(lease.key_pair, || {
                builder.lifetime(lease.lifetime).build(
                    &scratch,
                    &LeafSigner { key: signer, leaf },
                    credential,
                )
            })
        }
    }
    .map_err(mls_err)?;
    // Only Add proposals: no update path (RFC 9420 §12.4). Our leaf was made a moment ago
    // (a fresh key, or the current creator leaf's), so a path would only replace it with
    // another fresh one, at the cost of more key derivations, an HPKE encryption and a
    // signature per DM. No GroupInfo for export either (one for external joins: an external
    // key pair and a second GroupInfo signature per DM); the welcome carries its own.
    let bundle = group
        .commit_builder()
        .propose_adds(key_packages.iter().cloned())
        .force_self_update(false)
        .load_psks(scratch.storage())
        .map_err(mls_err)?
        .create_group_info(false)
        .build(scratch.rand(), scratch.crypto(), signer, |_| true)
        .map_err(mls_err)?
        .stage_commit(&scratch)
        .map_err(mls_err)?;
    let welcome = bundle
        .to_welcome_msg()
        .ok_or_else(|| mls_err("an add commit without a welcome"))?;
    let config = group.configuration().clone();
    group
        .set_configuration(provider.storage(), &config)
        .map_err(mls_err)?;
    let output = CommitOutput {
        commit: bundle.commit().tls_serialize_detached()?,
        welcome: welcome.tls_serialize_detached()?,
    };
    Ok((group, output))
}

/// Adds and removes installations of an existing DM and moves the membership extension to
/// `membership` in the same commit, as libxmtp's validators require (the installation diff
/// must equal what the identity logs imply between the old and new sequence ids). Left
/// pending like [`create_dm`]. `welcome` is empty when nothing was added.
pub fn update_installations(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    group: &mut MlsGroup,
    key_packages: Vec<KeyPackage>,
    removals: Vec<LeafNodeIndex>,
    membership: &HashMap<String, u64>,
    failed: &[Vec<u8>],
) -> Result<CommitOutput, MlsError> {
    let mut extensions = group.extensions().clone();
    extensions
        .add_or_replace(membership_extension(membership, failed))
        .map_err(mls_err)?;
    let bundle = group
        .commit_builder()
        .propose_adds(key_packages)
        .propose_removals(removals)
        .propose_group_context_extensions(extensions)
        .map_err(mls_err)?
        .load_psks(provider.storage())
        .map_err(mls_err)?
        .create_group_info(false)
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(mls_err)?
        .stage_commit(provider)
        .map_err(mls_err)?;
    let welcome = match bundle.to_welcome_msg() {
        Some(w) => w.tls_serialize_detached()?,
        None => Vec::new(),
    };
    Ok(CommitOutput {
        commit: bundle.commit().tls_serialize_detached()?,
        welcome,
    })
}

/// Merges our own pending commit after the node accepted it (a group [`create_dm`] built is
/// then written with the next flush).
pub fn merge_pending(provider: &XmtpProvider, group: &mut MlsGroup) -> Result<(), MlsError> {
    group.merge_pending_commit(provider).map_err(mls_err)?;
    provider.storage().release_group(group.group_id());
    Ok(())
}

/// Merges the commit [`create_dm`] left pending and drops the secrets of epoch 0, which only
/// we were ever in: every member joins at epoch 1 and our own epoch-0 message (the commit)
/// is never read back. openmls would otherwise keep them as a past epoch for
/// [`MAX_PAST_EPOCHS`] commits, doubling the message-secrets entry that every later send
/// rewrites.
///
/// The group is then written with the next flush (see [`create_dm`]); a merge that fails
/// gives the DM up.
pub fn merge_creation(provider: &XmtpProvider, group: &mut MlsGroup) -> Result<(), MlsError> {
    let merged = group
        .merge_pending_commit(provider)
        .map_err(mls_err)
        .and_then(|()| {
            group
                .delete_past_epoch_secrets(provider, PastEpochDeletion::delete_all())
                .map_err(mls_err)
        });
    match merged {
        Ok(()) => provider.storage().release_group(group.group_id()),
        Err(_) => provider.storage().discard_group(group.group_id()),
    }
    merged
}

/// Gives up a DM [`create_dm`] built whose commit was not merged: its state leaves memory
/// (nothing of it was written).
pub fn discard_creation(provider: &XmtpProvider, group: &MlsGroup) {
    provider.storage().discard_group(group.group_id());
}

/// Encrypts one application payload (a PlaintextEnvelope) as a TLS `MLSMessage`.
pub fn encrypt(
    provider: &XmtpProvider,
    signer: &InstallationKey,
    group: &mut MlsGroup,
    payload: &[u8],
) -> Result<Vec<u8>, MlsError> {
    let msg = group
        .create_message(provider, signer, payload)
        .map_err(mls_err)?;
    Ok(msg.tls_serialize_detached()?)
}

/// What processing one group message produced.
#[derive(Debug)]
pub enum Incoming {
    /// An application message and the inbox id of its sender.
    Application {
        payload: Vec<u8>,
        sender_inbox_id: Option<String>,
    },
    /// A commit from another member, merged: the group moved to a new epoch.
    CommitMerged,
    /// A standalone proposal, stored for the next commit.
    Proposal,
}

/// Decrypts and applies one incoming `MLSMessage`.
pub fn process(
    provider: &XmtpProvider,
    group: &mut MlsGroup,
    data: &[u8],
) -> Result<Incoming, MlsError> {
    let msg = MlsMessageIn::tls_deserialize_exact(data)?;
    let protocol: ProtocolMessage = match msg.extract() {
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        MlsMessageBodyIn::PublicMessage(m) => m.into(),
        _ => return Err(mls_err("not a group message")),
    };
    let processed = group.process_message(provider, protocol).map_err(mls_err)?;
    let sender_inbox_id = BasicCredential::try_from(processed.credential().clone())
        .ok()
        .and_then(|c| inbox_id_from_identity(c.identity()));
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(app) => Ok(Incoming::Application {
            payload: app.into_bytes(),
            sender_inbox_id,
        }),
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group
                .merge_staged_commit(provider, *staged)
                .map_err(mls_err)?;
            Ok(Incoming::CommitMerged)
        }
        ProcessedMessageContent::ProposalMessage(p) => {
            group
                .store_pending_proposal(provider.storage(), *p)
                .map_err(mls_err)?;
            Ok(Incoming::Proposal)
        }
        _ => Ok(Incoming::Proposal),
    }
}

/// Inbox id of a member leaf's credential.
pub fn member_inbox_id(member: &openmls::prelude::Member) -> Option<String> {
    BasicCredential::try_from(member.credential.clone())
        .ok()
        .and_then(|c| inbox_id_from_identity(c.identity()))
}

/// Signature keys (installation ids) of the group's current members.
pub fn member_installations(group: &MlsGroup) -> Vec<Vec<u8>> {
    group.members().map(|m| m.signature_key).collect()
}

/// Joins a group from an (unwrapped) TLS `MLSMessage(Welcome)`, as libxmtp does: ratchet tree
/// from the GroupInfo extension, leaf lifetimes not checked.
pub fn join(provider: &XmtpProvider, welcome: &[u8]) -> Result<MlsGroup, MlsError> {
    let msg = MlsMessageIn::tls_deserialize_exact(welcome)?;
    let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
        return Err(mls_err("not a welcome"));
    };
    let config = MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .build();
    StagedWelcome::build_from_welcome(provider, &config, welcome)
        .map_err(mls_err)?
        .skip_lifetime_validation()
        .build()
        .map_err(mls_err)?
        .into_group(provider)
        .map_err(mls_err)
}

#[cfg(test)]
#[path = "dm_tests.rs"]
mod tests;
