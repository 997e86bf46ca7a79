//! Sign-In with Ethereum (EIP-4361) challenges for wallet-signature subscriptions.
//!
//! herald writes the message, the wallet signs it with `personal_sign` (EIP-191), and herald
//! parses back only the fields it issued and recovers the signer. Parsing is strict about the
//! layout herald produces (the standard's line order); anything else is refused rather than
//! guessed at, because the signed text is the consent evidence.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Address, ChannelId};

/// Resource URI naming the channel a challenge is for.
const RESOURCE_PREFIX: &str = "herald:channel:";
const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";

/// The fields of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    pub domain: String,
    pub address: Address,
    pub uri: String,
    pub channel: String,
    /// The channel's display name, named in the statement the wallet shows (`None`: the
    /// statement names only the id, as challenges issued before names were shown did; a
    /// parsed message leaves it `None`, since herald never reads the statement back).
    pub channel_name: Option<String>,
    pub nonce: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a signed message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiweError {
    /// The text is not a challenge in the layout herald issues.
    #[error("not a herald subscribe challenge: {0}")]
    Malformed(&'static str),
    /// The signature is not 65 bytes of hex or does not recover a key.
    #[error("the signature is not a valid secp256k1 signature")]
    BadSignature,
    /// The signature is valid but made by another wallet than the message names.
    #[error("the message was signed by {signer}, not by the address it names")]
    WrongSigner { signer: String },
}

impl SiweMessage {
    /// A fresh challenge for `address` to subscribe to `channel`.
    pub fn new(
        domain: &str,
        uri: &str,
        channel: &ChannelId,
        address: &Address,
        nonce: &str,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            domain: domain.to_owned(),
            address: address.clone(),
            uri: uri.to_owned(),
            channel: channel.as_str().to_owned(),
            channel_name: None,
            nonce: nonce.to_owned(),
            issued_at,
            expires_at,
        }
    }

    /// Names the channel by its display name in the statement.
    pub fn with_channel_name(mut self, name: &str) -> Self {
        // The statement is one line (EIP-4361): no control characters.
        let clean: String = name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.channel_name = Some(clean.trim().to_owned());
        self
    }

    /// The statement line: what the wallet shows the subscriber as the purpose.
    fn statement(&self) -> String {
        match &self.channel_name {
            Some(name) => format!(
                "Subscribe to announcements from \"{name}\" (herald channel {}).",
                self.channel
            ),
            None => format!(
                "Subscribe to announcements from herald channel {}.",
                self.channel
            ),
        }
    }

    /// The exact text the wallet signs.
    pub fn to_text(&self) -> String {
        format!(
            "{domain}{HEADER_SUFFIX}\n{address}\n\n\
             {statement}\n\n\
             URI: {uri}\nVersion: 1\nChain ID: 1\nNonce: {nonce}\n\
             Issued At: {issued}\nExpiration Time: {expires}\nResources:\n- {RESOURCE_PREFIX}{channel}",
            domain = self.domain,
            address = self.address.to_checksum(),
            statement = self.statement(),
            channel = self.channel,
            uri = self.uri,
            nonce = self.nonce,
            issued = self.issued_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            expires = self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    }

    /// Parses a message in the layout [`to_text`](Self::to_text) writes.
    pub fn parse(text: &str) -> Result<Self, SiweError> {
        let mut lines = text.split('\n');
        let header = lines.next().ok_or(SiweError::Malformed("empty"))?;
        let domain = header
            .strip_suffix(HEADER_SUFFIX)
            .filter(|d| !d.is_empty())
            .ok_or(SiweError::Malformed("first line"))?;
        let address = lines
            .next()
            .and_then(|a| Address::parse(a).ok())
            .ok_or(SiweError::Malformed("address line"))?;
        let mut field = |name: &'static str| -> Result<String, SiweError> {
            // Skip the statement and blank lines until the named field.
            for line in lines.by_ref() {
                if let Some(value) = line.strip_prefix(name).and_then(|r| r.strip_prefix(": ")) {
                    return Ok(value.to_owned());
                }
            }
            Err(SiweError::Malformed(name))
        };
        let uri = field("URI")?;
        if field("Version")? != "1" {
            return Err(SiweError::Malformed("Version"));
        }
        field("Chain ID")?;
        let nonce = field("Nonce")?;
        let issued_at = time(&field("Issued At")?, "Issued At")?;
        let expires_at = time(&field("Expiration Time")?, "Expiration Time")?;
        if lines.next() != Some("Resources:") {
            return Err(SiweError::Malformed("Resources"));
        }
        let channel = lines
            .next()
            .and_then(|r| r.strip_prefix("- "))
            .and_then(|r| r.strip_prefix(RESOURCE_PREFIX))
            .ok_or(SiweError::Malformed("channel resource"))?
            .to_owned();
        if lines.next().is_some_and(|rest| !rest.is_empty()) {
            return Err(SiweError::Malformed("trailing text"));
        }
        Ok(Self {
            domain: domain.to_owned(),
            address,
            uri,
            channel,
            channel_name: None,
            nonce,
            issued_at,
            expires_at,
        })
    }
}

fn time(raw: &str, name: &'static str) -> Result<DateTime<Utc>, SiweError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| SiweError::Malformed(name))
}

/// Recovers the EIP-191 (`personal_sign`) signer of `text` from a 65-byte hex signature and
/// checks it is `expected`.
pub fn verify_personal_sign(
    text: &str,
    signature_hex: &str,
    expected: &Address,
) -> Result<(), SiweError> {
    let raw =
        hex::decode(signature_hex.trim_start_matches("0x")).map_err(|_| SiweError::BadSignature)?;
    if raw.len() != 65 {
        return Err(SiweError::BadSignature);
    }
    let signature =
        alloy_primitives::Signature::from_raw(&raw).map_err(|_| SiweError::BadSignature)?;
    let signer = signature
        .recover_address_from_msg(text.as_bytes())
        .map_err(|_| SiweError::BadSignature)?;
    let signer = format!("{signer:#x}");
    if signer != expected.as_str() {
        return Err(SiweError::WrongSigner { signer });
    }
    Ok(())
}

/// A random alphanumeric nonce (EIP-4361 asks for at least 8 characters).
pub fn generate_nonce() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SiweMessage {
        let address = Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
        let channel = ChannelId::generate();
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        SiweMessage::new(
            "herald.example",
            "https://herald.example",
            &channel,
            &address,
            "abcdefgh12345678",
            now,
            now + chrono::Duration::minutes(10),
        )
    }

    #[test]
    fn a_challenge_parses_back_to_itself() {
        let message = sample();
        assert_eq!(SiweMessage::parse(&message.to_text()).unwrap(), message);
    }

    #[test]
    fn an_edited_layout_is_refused() {
        let text = sample().to_text().replace("Resources:", "Things:");
        assert!(SiweMessage::parse(&text).is_err());
        let text = format!("{}\nextra", sample().to_text());
        assert!(SiweMessage::parse(&text).is_err());
    }

    #[test]
    fn garbage_signatures_are_refused() {
        let message = sample();
        let text = message.to_text();
        assert_eq!(
            verify_personal_sign(&text, "0x1234", &message.address),
            Err(SiweError::BadSignature)
        );
    }
}
