//! Wallet and inbox identity: the Ethereum wallet key, its address, the inbox id, and the
//! signed `IdentityUpdate`s that create an inbox or add an installation to one.
//!
//! The byte-exact signature text comes from `xmtp_proto::associations::signature_text`; every
//! signer of an update signs that same text (ERC-191 for the wallet, Ed25519ph with the
//! identity-update context for the installation).

use k256::ecdsa::SigningKey;
use xmtp_proto::associations::{inbox_id, sign, verify};
use xmtp_proto::associations_proto::IdentityUpdate;

use crate::mls::signer::InstallationKey;

/// libxmtp refuses to add an installation to an inbox that already has this many.
pub const MAX_INSTALLATIONS_PER_INBOX: usize = 10;

/// An Ethereum (secp256k1) wallet key. `Debug` shows only the address.
#[derive(Clone)]
pub struct Wallet {
    key: SigningKey,
}

impl Wallet {
    /// Wraps a 32-byte secp256k1 private key.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, k256::ecdsa::Error> {
        Ok(Self {
            key: SigningKey::from_bytes(secret.into())?,
        })
    }

    /// A random wallet (tests, throwaway senders).
    pub fn generate() -> Self {
        Self {
            key: SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// The lowercase `0x`-prefixed address.
    pub fn address(&self) -> String {
        verify::eth_address(self.key.verifying_key())
    }

    /// The inbox id this wallet creates with `nonce` (SDKs use 0).
    pub fn inbox_id(&self, nonce: u64) -> String {
        inbox_id(&self.address(), nonce).expect("derived addresses are well-formed")
    }

    /// ERC-191 `personal_sign`: 65 bytes `r ‖ s ‖ v`, low-s, v ∈ {27, 28}.
    pub fn sign_personal(&self, text: &str) -> [u8; 65] {
        sign::sign_erc191(&self.key, text)
    }
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

/// The first update of a new inbox: `CreateInbox` by the wallet plus `AddAssociation` of the
/// installation, both carrying the same wallet signature (as libxmtp publishes it). Built and
/// signed by `xmtp_proto::associations::sign`, the one copy the node's verifier is tested against.
pub fn create_inbox_update(
    wallet: &Wallet,
    installation: &InstallationKey,
    nonce: u64,
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    sign::create_inbox_update(
        &wallet.key,
        installation.signing_key(),
        nonce,
        client_timestamp_ns,
    )
}

/// The update that adds `installation` to the existing inbox `inbox_id`, signed by its wallet.
pub fn add_installation_update(
    inbox_id: &str,
    wallet: &Wallet,
    installation: &InstallationKey,
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    sign::add_installation_update(
        inbox_id,
        &wallet.key,
        installation.signing_key(),
        client_timestamp_ns,
    )
}

/// The update that revokes `installations` from the inbox `inbox_id`, signed by its recovery
/// wallet (only the recovery address may revoke). One action per installation, one signature
/// over the whole text, as libxmtp's `revoke_installations` builds it.
pub fn revoke_installations_update(
    inbox_id: &str,
    wallet: &Wallet,
    installations: &[Vec<u8>],
    client_timestamp_ns: u64,
) -> IdentityUpdate {
    sign::revoke_installations_update(inbox_id, &wallet.key, installations, client_timestamp_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmtp_proto::associations::{replay, signature_text, verify::recover_erc191};
    use xmtp_proto::associations_proto::{identity_action::Kind, signature};

    #[test]
    fn inbox_id_vector() {
        let id = inbox_id("0x1234567890abcdef1234567890abcdef12345678", 0).unwrap();
        assert_eq!(
            id,
            "fcd18d86276d7a99fe522dba9660c420f03c8648785ada7c5daae232a3df77a9"
        );
    }

    #[test]
    fn known_key_address() {
        // Private key 1 → the well-known address of the secp256k1 generator point.
        let mut sk = [0u8; 32];
        sk[31] = 1;
        let w = Wallet::from_bytes(&sk).unwrap();
        assert_eq!(w.address(), "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf");
        assert!(!format!("{w:?}").contains("0000000000000001"));
    }

    #[test]
    fn signature_text_is_what_we_sign() {
        let w = Wallet::generate();
        let i = InstallationKey::generate();
        // 2024-05-31T22:28:45Z
        let update = create_inbox_update(&w, &i, 0, 1_717_194_525_000_000_000);
        let text = signature_text(&update).unwrap();
        let expected = format!(
            "XMTP : Authenticate to inbox\n\nInbox ID: {}\nCurrent time: 2024-05-31T22:28:45Z\n\n\
             - Create inbox\n  (Owner: {})\n- Grant messaging access to app\n  (ID: {})\n\n\
             For more info: https://xmtp.org/signatures",
            w.inbox_id(0),
            w.address(),
            hex::encode(i.public_key())
        );
        assert_eq!(text, expected);
        let Some(Kind::CreateInbox(c)) = &update.actions[0].kind else {
            panic!()
        };
        let Some(signature::Signature::Erc191(sig)) =
            &c.initial_identifier_signature.as_ref().unwrap().signature
        else {
            panic!()
        };
        assert_eq!(recover_erc191(&text, &sig.bytes).unwrap(), w.address());
    }

    #[test]
    fn updates_pass_the_association_rules() {
        let w = Wallet::generate();
        let (i1, i2) = (InstallationKey::generate(), InstallationKey::generate());
        let first = create_inbox_update(&w, &i1, 0, 1_000_000_000);
        let second = add_installation_update(&w.inbox_id(0), &w, &i2, 2_000_000_000);
        let state = replay([&first, &second]).unwrap();
        assert_eq!(state.installations().len(), 2);
        assert_eq!(state.addresses(), vec![w.address()]);
        let revoke = revoke_installations_update(
            &w.inbox_id(0),
            &w,
            &[i1.public_key().to_vec()],
            3_000_000_000,
        );
        let state = replay([&first, &second, &revoke]).unwrap();
        assert_eq!(state.installations(), vec![i2.public_key().to_vec()]);
        // Only the recovery wallet may revoke.
        let other = Wallet::generate();
        let forged = revoke_installations_update(
            &w.inbox_id(0),
            &other,
            &[i2.public_key().to_vec()],
            4_000_000_000,
        );
        assert!(replay([&first, &second, &forged]).is_err());
    }
}
