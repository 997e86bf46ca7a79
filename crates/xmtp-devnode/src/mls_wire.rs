//! The little MLS parsing the node needs: who a KeyPackage belongs to, and the cleartext
//! header of an MLSMessage (group id and whether it is a commit).
//!
//! Like xmtp-node-go's validation service, the node never decrypts anything. It reads the
//! RFC 9420 TLS encoding directly (variable-length vectors use the MLS varint prefix,
//! which `tls_codec::VLBytes` implements). Uploaded key packages are also validated with
//! openmls like the real node does (signatures, lifetime, capabilities, init key distinct
//! from the encryption key), so a client's bad key package fails here and not later in a
//! peer's welcome processing.

use prost::Message as _;
use tls_codec::{Deserialize, VLBytes};
use xmtp_proto::xmtp::identity::MlsCredential;

const MLS_10: u16 = 1;
const WIRE_PUBLIC_MESSAGE: u16 = 1;
const WIRE_PRIVATE_MESSAGE: u16 = 2;
const CONTENT_COMMIT: u8 = 3;
const CREDENTIAL_BASIC: u16 = 1;

/// Why an MLS structure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MlsWireError {
    /// The bytes ended early or a length prefix was invalid.
    #[error("truncated or malformed TLS encoding")]
    Malformed,
    /// Not MLS 1.0.
    #[error("unsupported protocol version {0}")]
    Version(u16),
    /// The MLSMessage is neither a PublicMessage nor a PrivateMessage.
    #[error("wire format {0} is not a group message")]
    WireFormat(u16),
    /// The leaf credential is not a BasicCredential carrying an XMTP `MlsCredential`.
    #[error("key package credential is not an XMTP inbox credential")]
    Credential,
    /// openmls refused the key package (signature, lifetime, capabilities...).
    #[error("key package failed validation: {0}")]
    Invalid(String),
}

/// What the node reads from an uploaded KeyPackage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackageInfo {
    /// The leaf signature key: the installation's public key and lookup key.
    pub installation_key: Vec<u8>,
    /// The inbox named by the leaf credential.
    pub inbox_id: String,
}

/// What the node reads from a group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessageHeader {
    pub group_id: Vec<u8>,
    pub epoch: u64,
    pub is_commit: bool,
}

fn read<T: Deserialize>(bytes: &mut &[u8]) -> Result<T, MlsWireError> {
    T::tls_deserialize(bytes).map_err(|_| MlsWireError::Malformed)
}

fn read_vl(bytes: &mut &[u8]) -> Result<Vec<u8>, MlsWireError> {
    Ok(read::<VLBytes>(bytes)?.as_slice().to_vec())
}

/// Reads `version, cipher_suite, init_key, leaf_node{encryption_key, signature_key, credential}`.
pub fn parse_key_package(mut bytes: &[u8]) -> Result<KeyPackageInfo, MlsWireError> {
    let b = &mut bytes;
    let version: u16 = read(b)?;
    if version != MLS_10 {
        return Err(MlsWireError::Version(version));
    }
    let _cipher_suite: u16 = read(b)?;
    let _init_key = read_vl(b)?;
    let _encryption_key = read_vl(b)?;
    let installation_key = read_vl(b)?;
    let credential_type: u16 = read(b)?;
    if credential_type != CREDENTIAL_BASIC {
        return Err(MlsWireError::Credential);
    }
    let identity = read_vl(b)?;
    let credential =
        MlsCredential::decode(identity.as_slice()).map_err(|_| MlsWireError::Credential)?;
    let inbox_id = credential.inbox_id;
    if inbox_id.len() != 64 || !inbox_id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(MlsWireError::Credential);
    }
    if installation_key.is_empty() {
        return Err(MlsWireError::Malformed);
    }
    Ok(KeyPackageInfo {
        installation_key,
        inbox_id,
    })
}

/// Parses the key package (see [`parse_key_package`]) and verifies it with openmls: leaf and
/// key-package signatures, MLS 1.0, lifetime, every extension listed in the capabilities,
/// init key different from the encryption key.
pub fn validate_key_package(bytes: &[u8]) -> Result<KeyPackageInfo, MlsWireError> {
    use openmls::prelude::{KeyPackageIn, ProtocolVersion};
    use openmls_rust_crypto::RustCrypto;
    use std::sync::OnceLock;

    static CRYPTO: OnceLock<RustCrypto> = OnceLock::new();
    let info = parse_key_package(bytes)?;
    let mut reader = bytes;
    let key_package =
        KeyPackageIn::tls_deserialize(&mut reader).map_err(|_| MlsWireError::Malformed)?;
    if !reader.is_empty() {
        return Err(MlsWireError::Malformed);
    }
    key_package
        .validate(
            CRYPTO.get_or_init(RustCrypto::default),
            ProtocolVersion::Mls10,
        )
        .map_err(|e| MlsWireError::Invalid(e.to_string()))?;
    Ok(info)
}

/// Reads the cleartext header of an MLSMessage holding a PrivateMessage or PublicMessage.
/// A PrivateMessage (all libxmtp sends) must also be complete, with nothing trailing; for a
/// PublicMessage only the header is read.
pub fn parse_group_message(mut bytes: &[u8]) -> Result<GroupMessageHeader, MlsWireError> {
    let b = &mut bytes;
    let version: u16 = read(b)?;
    if version != MLS_10 {
        return Err(MlsWireError::Version(version));
    }
    let wire_format: u16 = read(b)?;
    if !matches!(wire_format, WIRE_PRIVATE_MESSAGE | WIRE_PUBLIC_MESSAGE) {
        return Err(MlsWireError::WireFormat(wire_format));
    }
    let group_id = read_vl(b)?;
    let epoch: u64 = read(b)?;
    let content_type: u8 = match wire_format {
        WIRE_PRIVATE_MESSAGE => {
            // The rest of a PrivateMessage: authenticated_data, encrypted_sender_data and a
            // non-empty ciphertext, and nothing after them.
            let content_type = read(b)?;
            let _aad = read_vl(b)?;
            let sender_data = read_vl(b)?;
            let ciphertext = read_vl(b)?;
            if sender_data.is_empty() || ciphertext.is_empty() || !b.is_empty() {
                return Err(MlsWireError::Malformed);
            }
            content_type
        }
        WIRE_PUBLIC_MESSAGE => {
            // FramedContent: sender, authenticated_data, then content_type.
            let sender_type: u8 = read(b)?;
            if matches!(sender_type, 1 | 2) {
                let _index: u32 = read(b)?;
            }
            let _aad = read_vl(b)?;
            read(b)?
        }
        other => return Err(MlsWireError::WireFormat(other)),
    };
    if !(1..=3).contains(&content_type) {
        return Err(MlsWireError::Malformed);
    }
    Ok(GroupMessageHeader {
        group_id,
        epoch,
        is_commit: content_type == CONTENT_COMMIT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a PrivateMessage header followed by an opaque ciphertext.
    pub(crate) fn private_message(group_id: &[u8], epoch: u64, content_type: u8) -> Vec<u8> {
        let mut out = vec![0, 1, 0, 2, group_id.len() as u8];
        out.extend_from_slice(group_id);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.push(content_type);
        out.extend_from_slice(&[0, 2, 9, 9, 0x04, 1, 2, 3, 4]);
        out
    }

    #[test]
    fn private_message_header() {
        let h = parse_group_message(&private_message(&[9; 16], 5, 3)).unwrap();
        assert_eq!(
            h,
            GroupMessageHeader {
                group_id: vec![9; 16],
                epoch: 5,
                is_commit: true
            }
        );
        assert!(
            !parse_group_message(&private_message(&[9; 16], 5, 1))
                .unwrap()
                .is_commit
        );
    }

    #[test]
    fn public_message_header() {
        let mut m = vec![0, 1, 0, 1, 2, 7, 7];
        m.extend_from_slice(&1u64.to_be_bytes());
        m.extend_from_slice(&[1, 0, 0, 0, 4, 0, 3]);
        let h = parse_group_message(&m).unwrap();
        assert_eq!(h.group_id, vec![7, 7]);
        assert!(h.is_commit);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            parse_group_message(&[0, 1, 0, 2]),
            Err(MlsWireError::Malformed)
        );
        assert_eq!(
            parse_group_message(&[0, 1, 0, 3, 0]),
            Err(MlsWireError::WireFormat(3))
        );
        assert_eq!(
            parse_group_message(&[0, 2, 0, 2]),
            Err(MlsWireError::Version(2))
        );
    }

    #[test]
    fn key_package_signature_key_and_inbox() {
        let inbox = "ab".repeat(32);
        let cred = MlsCredential {
            inbox_id: inbox.clone(),
        }
        .encode_to_vec();
        let mut kp = vec![0, 1, 0, 3, 32];
        kp.extend_from_slice(&[1; 32]);
        kp.push(32);
        kp.extend_from_slice(&[2; 32]);
        kp.push(32);
        kp.extend_from_slice(&[3; 32]);
        // 66 bytes need the two-byte MLS varint prefix (0b01 in the top bits).
        kp.extend_from_slice(&[0, 1, 0x40, cred.len() as u8]);
        kp.extend_from_slice(&cred);
        let info = parse_key_package(&kp).unwrap();
        assert_eq!(
            info,
            KeyPackageInfo {
                installation_key: vec![3; 32],
                inbox_id: inbox
            }
        );
        assert_eq!(parse_key_package(&kp[..40]), Err(MlsWireError::Malformed));
    }
}
