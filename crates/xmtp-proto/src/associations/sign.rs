//! Signing helpers that produce the signatures [`super::verify`] accepts.
//!
//! The client uses them to register; the node's tests use them to build valid and invalid
//! updates. Keys are passed in by the caller and never stored or printed here.

use ed25519_dalek::SigningKey as InstallationKey;
use k256::ecdsa::SigningKey as WalletKey;
use sha2::{Digest, Sha512};

use super::verify::{erc191_hash, INSTALLATION_SIGNATURE_CONTEXT};
use super::MemberId;
use crate::associations_proto::{
    identity_action::Kind, signature, AddAssociation, CreateInbox, IdentifierKind, IdentityAction,
    IdentityUpdate, RecoverableEcdsaSignature, RecoverableEd25519Signature, RevokeAssociation,
    Signature,
};

/// ERC-191 `personal_sign` of `text`: 65 bytes `r || s || v` with low s and `v` in {27, 28}.
pub fn sign_erc191(key: &WalletKey, text: &str) -> [u8; 65] {
    let (sig, recid) = key
        .sign_prehash_recoverable(&erc191_hash(text))
        .expect("signing a 32-byte prehash cannot fail");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + recid.to_byte();
    out
}

/// Ed25519ph of `text` with the identity-update context: 64 bytes.
pub fn sign_installation(key: &InstallationKey, text: &str) -> [u8; 64] {
    let mut prehash = Sha512::new();
    prehash.update(text.as_bytes());
    key.sign_prehashed(prehash, Some(INSTALLATION_SIGNATURE_CONTEXT))
        .expect("the context is shorter than 256 bytes")
        .to_bytes()
}

/// A wallet signature in proto form.
pub fn erc191_signature(key: &WalletKey, text: &str) -> Signature {
    Signature {
        signature: Some(signature::Signature::Erc191(RecoverableEcdsaSignature {
            bytes: sign_erc191(key, text).to_vec(),
        })),
    }
}

/// An installation signature in proto form (carries the public key).
pub fn installation_signature(key: &InstallationKey, text: &str) -> Signature {
    Signature {
        signature: Some(signature::Signature::InstallationKey(
            RecoverableEd25519Signature {
                bytes: sign_installation(key, text).to_vec(),
                public_key: key.verifying_key().to_bytes().to_vec(),
            },
        )),
    }
}

/// The update a new client publishes to create its inbox: `CreateInbox` by the wallet and
/// `AddAssociation` of the installation, both carrying the same wallet signature (as libxmtp).
pub fn create_inbox_update(
    wallet: &WalletKey,
    installation: &InstallationKey,
    nonce: u64,
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    let address = super::verify::eth_address(wallet.verifying_key());
    let inbox_id = super::inbox_id(&address, nonce).expect("derived addresses are well-formed");
    let mut update = IdentityUpdate {
        inbox_id,
        client_timestamp_ns,
        actions: vec![
            IdentityAction {
                kind: Some(Kind::CreateInbox(CreateInbox {
                    initial_identifier: address,
                    nonce,
                    initial_identifier_signature: None,
                    initial_identifier_kind: IdentifierKind::Ethereum as i32,
                    relying_party: None,
                })),
            },
            add_installation_action(installation),
        ],
    };
    sign_update(&mut update, wallet, installation);
    update
}

/// The update that adds another installation to an existing inbox, signed by its wallet.
pub fn add_installation_update(
    inbox_id: &str,
    wallet: &WalletKey,
    installation: &InstallationKey,
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    let mut update = IdentityUpdate {
        inbox_id: inbox_id.to_owned(),
        client_timestamp_ns,
        actions: vec![add_installation_action(installation)],
    };
    sign_update(&mut update, wallet, installation);
    update
}

/// The update that revokes `installations` (their public keys) from the inbox `inbox_id`,
/// signed by its recovery wallet (only the recovery address may revoke): one action per
/// installation, one signature over the whole text, as libxmtp's `revoke_installations`.
pub fn revoke_installations_update(
    inbox_id: &str,
    wallet: &WalletKey,
    installations: &[Vec<u8>],
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    let mut update = IdentityUpdate {
        inbox_id: inbox_id.to_owned(),
        client_timestamp_ns,
        actions: installations
            .iter()
            .map(|id| IdentityAction {
                kind: Some(Kind::Revoke(RevokeAssociation {
                    member_to_revoke: Some(MemberId::Installation(id.clone()).to_proto()),
                    recovery_identifier_signature: None,
                })),
            })
            .collect(),
    };
    let text = super::signature_text(&update).expect("built from well-formed fields");
    let wallet_sig = erc191_signature(wallet, &text);
    for action in &mut update.actions {
        if let Some(Kind::Revoke(r)) = action.kind.as_mut() {
            r.recovery_identifier_signature = Some(wallet_sig.clone());
        }
    }
    update
}

fn add_installation_action(installation: &InstallationKey) -> IdentityAction {
    IdentityAction {
        kind: Some(Kind::Add(AddAssociation {
            new_member_identifier: Some(
                MemberId::Installation(installation.verifying_key().to_bytes().to_vec()).to_proto(),
            ),
            ..Default::default()
        })),
    }
}

/// Fills the wallet and installation signatures of a create/add-installation update.
fn sign_update(update: &mut IdentityUpdate, wallet: &WalletKey, installation: &InstallationKey) {
    let text = super::signature_text(update).expect("built from well-formed fields");
    let wallet_sig = erc191_signature(wallet, &text);
    let installation_sig = installation_signature(installation, &text);
    for action in &mut update.actions {
        match action.kind.as_mut() {
            Some(Kind::CreateInbox(c)) => c.initial_identifier_signature = Some(wallet_sig.clone()),
            Some(Kind::Add(a)) => {
                a.existing_member_signature = Some(wallet_sig.clone());
                a.new_member_signature = Some(installation_sig.clone());
            }
            _ => {}
        }
    }
}
