//! Association state: who belongs to an inbox after replaying its identity updates.
//!
//! The rules follow libxmtp's `association_log.rs`: `CreateInbox` only first and signed by
//! the initial wallet; `AddAssociation` needs the new member's own signature plus one from
//! an existing member (or the recovery address), and an installation may not add an
//! installation; only the recovery address revokes (revoking a wallet also drops the
//! installations it added) or changes the recovery address; a signature used by an earlier
//! update may not be reused (it may repeat within one update, as libxmtp's registration
//! puts the same wallet signature in both of its actions).

use std::collections::{BTreeMap, HashSet};

use super::verify::{verify_signature, SignatureKind, VerifiedSignature};
use super::{inbox_id, normalize_address, signature_text, AssociationError, MemberId};
use crate::associations_proto::{
    identity_action::Kind, AddAssociation, ChangeRecoveryAddress, CreateInbox, IdentifierKind,
    IdentityUpdate, RevokeAssociation, Signature,
};
use crate::ed25519;

/// What is known about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member that signed for this one; `None` for the inbox's creator.
    pub added_by: Option<MemberId>,
    pub client_timestamp_ns: Option<u64>,
}

/// The members and recovery address of one inbox at some point of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationState {
    pub inbox_id: String,
    pub members: BTreeMap<MemberId, MemberInfo>,
    /// Lowercase address allowed to revoke members and add new ones.
    pub recovery_address: String,
    seen_signatures: HashSet<Vec<u8>>,
}

impl AssociationState {
    /// Installation public keys currently associated, in key order.
    pub fn installations(&self) -> Vec<Vec<u8>> {
        self.members
            .keys()
            .filter_map(|m| match m {
                MemberId::Installation(k) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }

    /// Lowercase Ethereum addresses currently associated.
    pub fn addresses(&self) -> Vec<String> {
        self.members
            .keys()
            .filter_map(|m| match m {
                MemberId::Ethereum(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether `member` currently belongs to the inbox.
    pub fn contains(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    fn check_replay(&self, sigs: &[&VerifiedSignature]) -> Result<(), AssociationError> {
        if sigs.iter().any(|s| self.seen_signatures.contains(&s.raw)) {
            return Err(AssociationError::Replay);
        }
        Ok(())
    }
}

/// Replays a whole log, oldest first.
pub fn replay<'a>(
    updates: impl IntoIterator<Item = &'a IdentityUpdate>,
) -> Result<AssociationState, AssociationError> {
    let mut state = None;
    for update in updates {
        state = Some(apply_update(state, update)?);
    }
    state.ok_or(AssociationError::NotCreated)
}

/// [`replay`] of many logs, their installation (Ed25519ph) signatures checked as one batch
/// ([`ed25519::batched`]: only a log whose own signatures fail is replayed again). Wallet
/// signatures are checked as they come (there is no batch check for ECDSA public-key
/// recovery).
pub fn replay_all<'a, L>(logs: &[L]) -> Vec<Result<AssociationState, AssociationError>>
where
    L: AsRef<[&'a IdentityUpdate]>,
{
    ed25519::batched(logs, |log| replay(log.as_ref().iter().copied()))
}

/// Verifies every signature of `update` and applies its actions to `state`.
pub fn apply_update(
    state: Option<AssociationState>,
    update: &IdentityUpdate,
) -> Result<AssociationState, AssociationError> {
    if update.inbox_id.len() != 64 || !update.inbox_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AssociationError::InvalidInboxId(update.inbox_id.clone()));
    }
    if update.actions.is_empty() {
        return Err(AssociationError::EmptyUpdate);
    }
    let text = signature_text(update)?;
    let mut state = state;
    let mut used = Used::default();
    for action in &update.actions {
        let kind = action
            .kind
            .as_ref()
            .ok_or(AssociationError::MissingField("identity_action.kind"))?;
        state = Some(match kind {
            Kind::CreateInbox(c) => create_inbox(state, c, &text, &mut used)?,
            Kind::Add(a) => add(
                existing(state)?,
                a,
                &text,
                update.client_timestamp_ns,
                &mut used,
            )?,
            Kind::Revoke(r) => revoke(existing(state)?, r, &text, &mut used)?,
            Kind::ChangeRecoveryAddress(c) => {
                change_recovery(existing(state)?, c, &text, &mut used)?
            }
        });
    }
    let mut state = state.ok_or(AssociationError::NotCreated)?;
    if state.inbox_id != update.inbox_id {
        return Err(AssociationError::WrongInboxId {
            claimed: update.inbox_id.clone(),
            actual: state.inbox_id,
        });
    }
    state.seen_signatures.extend(used.raw);
    Ok(state)
}

fn existing(state: Option<AssociationState>) -> Result<AssociationState, AssociationError> {
    state.ok_or(AssociationError::NotCreated)
}

fn verified(
    text: &str,
    sig: Option<&Signature>,
    used: &mut Used,
) -> Result<VerifiedSignature, AssociationError> {
    let sig = sig.ok_or(AssociationError::MissingField("signature"))?;
    // Every signature of an update signs the same text, so a signature repeated in it (the
    // wallet's, on "create inbox" and "add installation" of a registration) verifies once:
    // secp256k1 recovery is the costliest step of reading a new peer's identity.
    let v = match used.verified.iter().find(|(s, _)| s == sig) {
        Some((_, v)) => v.clone(),
        None => {
            let v = verify_signature(text, sig)?;
            used.verified.push((sig.clone(), v.clone()));
            v
        }
    };
    used.raw.push(v.raw.clone());
    Ok(v)
}

/// The signatures one update used: their bytes (for the reuse check of later updates) and
/// what each distinct one verified as.
#[derive(Default)]
struct Used {
    raw: Vec<Vec<u8>>,
    verified: Vec<(Signature, VerifiedSignature)>,
}

/// Wallets must sign with wallet signatures, installations with installation keys.
fn check_kind(member: &MemberId, sig: &VerifiedSignature) -> Result<(), AssociationError> {
    let ok = matches!(
        (member, sig.kind),
        (MemberId::Ethereum(_), SignatureKind::Erc191)
            | (MemberId::Installation(_), SignatureKind::InstallationKey)
    );
    if ok {
        Ok(())
    } else {
        let kind = match sig.kind {
            SignatureKind::Erc191 => "wallet",
            SignatureKind::InstallationKey => "installation-key",
        };
        Err(AssociationError::SignatureNotAllowed(
            member.kind_name(),
            kind,
        ))
    }
}

fn create_inbox(
    state: Option<AssociationState>,
    c: &CreateInbox,
    text: &str,
    used: &mut Used,
) -> Result<AssociationState, AssociationError> {
    if state.is_some() {
        return Err(AssociationError::MultipleCreate);
    }
    if c.initial_identifier_kind == IdentifierKind::Passkey as i32 {
        return Err(AssociationError::Unsupported("passkey inbox"));
    }
    let address = normalize_address(&c.initial_identifier)?;
    let sig = verified(text, c.initial_identifier_signature.as_ref(), used)?;
    let owner = MemberId::Ethereum(address.clone());
    if sig.signer != owner {
        return Err(AssociationError::MissingExistingMember);
    }
    check_kind(&owner, &sig)?;
    let info = MemberInfo {
        added_by: None,
        client_timestamp_ns: None,
    };
    Ok(AssociationState {
        inbox_id: inbox_id(&address, c.nonce)?,
        members: BTreeMap::from([(owner, info)]),
        recovery_address: address,
        seen_signatures: HashSet::new(),
    })
}

fn add(
    mut state: AssociationState,
    a: &AddAssociation,
    text: &str,
    client_timestamp_ns: u64,
    used: &mut Used,
) -> Result<AssociationState, AssociationError> {
    let new_member = MemberId::from_proto(
        a.new_member_identifier
            .as_ref()
            .ok_or(AssociationError::MissingField("new_member_identifier"))?,
    )?;
    let new_sig = verified(text, a.new_member_signature.as_ref(), used)?;
    let existing_sig = verified(text, a.existing_member_signature.as_ref(), used)?;
    state.check_replay(&[&new_sig, &existing_sig])?;
    if new_sig.signer != new_member {
        return Err(AssociationError::NewMemberIdSignatureMismatch);
    }
    if new_sig.signer == existing_sig.signer {
        return Err(AssociationError::AddSelf);
    }
    check_kind(&new_member, &new_sig)?;
    let signer = existing_sig.signer.clone();
    let recovery = MemberId::Ethereum(state.recovery_address.clone());
    if !state.contains(&signer) && signer != recovery {
        return Err(AssociationError::MissingExistingMember);
    }
    check_kind(&signer, &existing_sig)?;
    if matches!(signer, MemberId::Installation(_))
        && matches!(new_member, MemberId::Installation(_))
    {
        return Err(AssociationError::MemberNotAllowed(
            "installation",
            "installation",
        ));
    }
    let info = MemberInfo {
        added_by: Some(signer),
        client_timestamp_ns: Some(client_timestamp_ns),
    };
    state.members.insert(new_member, info);
    Ok(state)
}

fn revoke(
    mut state: AssociationState,
    r: &RevokeAssociation,
    text: &str,
    used: &mut Used,
) -> Result<AssociationState, AssociationError> {
    let revoked = MemberId::from_proto(
        r.member_to_revoke
            .as_ref()
            .ok_or(AssociationError::MissingField("member_to_revoke"))?,
    )?;
    let sig = verified(text, r.recovery_identifier_signature.as_ref(), used)?;
    state.check_replay(&[&sig])?;
    if sig.signer != MemberId::Ethereum(state.recovery_address.clone()) {
        return Err(AssociationError::MissingExistingMember);
    }
    // Installations the revoked member vouched for go with it.
    let children: Vec<MemberId> = state
        .members
        .iter()
        .filter(|(m, info)| {
            matches!(m, MemberId::Installation(_)) && info.added_by.as_ref() == Some(&revoked)
        })
        .map(|(m, _)| m.clone())
        .collect();
    state.members.remove(&revoked);
    for child in children {
        state.members.remove(&child);
    }
    Ok(state)
}

fn change_recovery(
    mut state: AssociationState,
    c: &ChangeRecoveryAddress,
    text: &str,
    used: &mut Used,
) -> Result<AssociationState, AssociationError> {
    let new_recovery = normalize_address(&c.new_recovery_identifier)?;
    let sig = verified(
        text,
        c.existing_recovery_identifier_signature.as_ref(),
        used,
    )?;
    state.check_replay(&[&sig])?;
    if sig.signer != MemberId::Ethereum(state.recovery_address.clone()) {
        return Err(AssociationError::MissingExistingMember);
    }
    state.recovery_address = new_recovery;
    Ok(state)
}
