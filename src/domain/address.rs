//! Ethereum account addresses as subscribers and channel identities use them.
//!
//! Accepted input: `0x` followed by 40 hex digits. All-lowercase and all-uppercase bodies carry
//! no checksum; a mixed-case body is an EIP-55 checksum and must be correct, because a wrong one
//! almost always means a typo and a message sent to a typo is lost. The canonical stored form is
//! all lowercase so that uniqueness checks are plain string equality.

use std::fmt;

/// A validated Ethereum address, held in canonical lowercase form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

/// Why an address string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Not `0x` + 40 hexadecimal digits.
    #[error("address must be 0x followed by 40 hex digits")]
    Malformed,
    /// Mixed case that does not match the EIP-55 checksum.
    #[error("address has mixed case but an invalid EIP-55 checksum")]
    BadChecksum,
}

impl Address {
    /// Validates `raw` and returns its canonical form.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let body = raw.strip_prefix("0x").ok_or(AddressError::Malformed)?;
        if body.len() != 40 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError::Malformed);
        }
        let has_lower = body.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = body.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            alloy_primitives::Address::parse_checksummed(raw, None)
                .map_err(|_| AddressError::BadChecksum)?;
        }
        Ok(Self(format!("0x{}", body.to_ascii_lowercase())))
    }

    /// Wraps a value read back from our own database (stored canonical).
    pub fn from_trusted(canonical: String) -> Self {
        Self(canonical)
    }

    /// Derives the address of a secp256k1 public key (last 20 bytes of keccak256 of the
    /// uncompressed point without its 0x04 tag).
    pub fn from_public_key(key: &k256::ecdsa::VerifyingKey) -> Self {
        Self(xmtp_proto::associations::verify::eth_address(key))
    }

    /// The canonical lowercase form, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The EIP-55 mixed-case form, for display to humans and wallets.
    pub fn to_checksum(&self) -> String {
        let raw: alloy_primitives::Address = self
            .0
            .parse()
            .expect("canonical address is always valid hex");
        raw.to_checksum(None)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vector from EIP-55 itself.
    const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    #[test]
    fn accepts_checksummed_lower_and_upper_forms() {
        let canonical = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        assert_eq!(Address::parse(CHECKSUMMED).unwrap().as_str(), canonical);
        assert_eq!(Address::parse(canonical).unwrap().as_str(), canonical);
        let upper = format!("0x{}", &CHECKSUMMED[2..].to_ascii_uppercase());
        assert_eq!(Address::parse(&upper).unwrap().as_str(), canonical);
        assert_eq!(
            Address::parse(canonical).unwrap().to_checksum(),
            CHECKSUMMED
        );
    }

    #[test]
    fn rejects_bad_checksum_and_malformed_input() {
        let flipped = CHECKSUMMED.replace("aAeb", "AAeb");
        assert_eq!(Address::parse(&flipped), Err(AddressError::BadChecksum));
        assert_eq!(
            Address::parse("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            Err(AddressError::Malformed)
        );
        assert_eq!(Address::parse("0x5aaeb6053f"), Err(AddressError::Malformed));
        assert_eq!(
            Address::parse("0xzzaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            Err(AddressError::Malformed)
        );
    }
}
