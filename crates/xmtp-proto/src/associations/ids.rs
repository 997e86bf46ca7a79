//! Member identifiers and inbox id derivation.

use sha2::{Digest, Sha256};

use super::AssociationError;
use crate::associations_proto::{member_identifier, MemberIdentifier};

/// Lowercases and checks an Ethereum address (`0x` + 40 hex digits).
///
/// libxmtp lowercases every address before hashing or signing it, so the text and the
/// inbox id are always built from the lowercase form.
pub fn normalize_address(address: &str) -> Result<String, AssociationError> {
    let lower = address.to_ascii_lowercase();
    let hex_part = lower
        .strip_prefix("0x")
        .ok_or_else(|| AssociationError::InvalidAddress(address.to_owned()))?;
    if hex_part.len() != 40 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AssociationError::InvalidAddress(address.to_owned()));
    }
    Ok(lower)
}

/// The inbox id an address creates with `nonce`: hex(SHA-256(address || decimal(nonce))).
pub fn inbox_id(address: &str, nonce: u64) -> Result<String, AssociationError> {
    let address = normalize_address(address)?;
    let mut hasher = Sha256::new();
    hasher.update(address.as_bytes());
    hasher.update(nonce.to_string().as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

/// A member of an inbox, in normalised form (addresses lowercase).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberId {
    /// A lowercase `0x` Ethereum address.
    Ethereum(String),
    /// A 32-byte Ed25519 installation public key.
    Installation(Vec<u8>),
    /// A passkey public key (decoded, never verified by herald).
    Passkey(Vec<u8>),
}

impl MemberId {
    /// Parses the proto form, normalising addresses.
    pub fn from_proto(id: &MemberIdentifier) -> Result<Self, AssociationError> {
        match &id.kind {
            Some(member_identifier::Kind::EthereumAddress(a)) => {
                Ok(Self::Ethereum(normalize_address(a)?))
            }
            Some(member_identifier::Kind::InstallationPublicKey(k)) => {
                Ok(Self::Installation(k.clone()))
            }
            Some(member_identifier::Kind::Passkey(p)) => Ok(Self::Passkey(p.key.clone())),
            None => Err(AssociationError::MissingField("member_identifier.kind")),
        }
    }

    /// The proto form.
    pub fn to_proto(&self) -> MemberIdentifier {
        let kind = match self {
            Self::Ethereum(a) => member_identifier::Kind::EthereumAddress(a.clone()),
            Self::Installation(k) => member_identifier::Kind::InstallationPublicKey(k.clone()),
            Self::Passkey(k) => {
                member_identifier::Kind::Passkey(crate::associations_proto::Passkey {
                    key: k.clone(),
                    relying_party: None,
                })
            }
        };
        MemberIdentifier { kind: Some(kind) }
    }

    /// The kind's name, as used in error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Ethereum(_) => "wallet",
            Self::Installation(_) => "installation",
            Self::Passkey(_) => "passkey",
        }
    }

    /// The value as it appears in the signature text: the address, or hex of the key.
    pub fn text_value(&self) -> String {
        match self {
            Self::Ethereum(a) => a.clone(),
            Self::Installation(k) | Self::Passkey(k) => hex::encode(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_id_matches_the_libxmtp_vector() {
        let id = inbox_id("0x1234567890abcdef1234567890abcdef12345678", 0).unwrap();
        assert_eq!(
            id,
            "fcd18d86276d7a99fe522dba9660c420f03c8648785ada7c5daae232a3df77a9"
        );
    }

    #[test]
    fn inbox_id_lowercases_the_address() {
        let upper = inbox_id("0x1234567890ABCDEF1234567890ABCDEF12345678", 0).unwrap();
        assert_eq!(
            upper,
            inbox_id("0x1234567890abcdef1234567890abcdef12345678", 0).unwrap()
        );
        assert_ne!(
            upper,
            inbox_id("0x1234567890abcdef1234567890abcdef12345678", 1).unwrap()
        );
    }

    #[test]
    fn bad_addresses_are_rejected() {
        for bad in [
            "1234567890abcdef1234567890abcdef12345678",
            "0x1234",
            "0xzz34567890abcdef1234567890abcdef12345678",
        ] {
            assert!(matches!(
                normalize_address(bad),
                Err(AssociationError::InvalidAddress(_))
            ));
        }
    }
}
