//! Key packages and credentials exactly as a libxmtp 1.10 peer expects them.
//!
//! We advertise only what we can decrypt: no 0xff03 (X-Wing welcome wrapper key) and no 0xff04
//! (welcome pointers), so libxmtp senders wrap welcomes to us with X25519 HPKE to `init_key`.

use openmls::prelude::{
    ApplicationIdExtension, BasicCredential, Capabilities, Ciphersuite, CredentialType,
    CredentialWithKey, Extension, ExtensionType, Extensions, KeyPackage, KeyPackageBundle,
    KeyPackageNewError, ProposalType, ProtocolVersion,
};
use prost::Message as _;
use xmtp_proto::xmtp::identity::MlsCredential;

use super::provider::XmtpProvider;
use super::signer::InstallationKey;

/// The only ciphersuite XMTP groups use (0x0003).
pub const CIPHERSUITE: Ciphersuite =
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
/// Group-context extension carrying `GroupMutableMetadataV1`.
pub const MUTABLE_METADATA_EXTENSION_ID: u16 = 0xff00;
/// Group-context extension carrying `GroupMembership` (inbox id → identity sequence id).
pub const GROUP_MEMBERSHIP_EXTENSION_ID: u16 = 0xff01;
/// Group-context extension carrying `GroupMutablePermissionsV1`.
pub const GROUP_PERMISSIONS_EXTENSION_ID: u16 = 0xff02;
/// Group-context extension carrying the TLS-wrapped `GroupMetadataV1` (libxmtp's fork calls it
/// `ImmutableMetadata`; upstream openmls sees it as unknown).
pub const IMMUTABLE_METADATA_EXTENSION_ID: u16 = 0xf000;

/// The extension types every XMTP leaf must support (the groups' RequiredCapabilities).
pub fn supported_extensions() -> Vec<ExtensionType> {
    vec![
        ExtensionType::LastResort,
        ExtensionType::ApplicationId,
        ExtensionType::Unknown(MUTABLE_METADATA_EXTENSION_ID),
        ExtensionType::Unknown(GROUP_MEMBERSHIP_EXTENSION_ID),
        ExtensionType::Unknown(GROUP_PERMISSIONS_EXTENSION_ID),
        ExtensionType::Unknown(IMMUTABLE_METADATA_EXTENSION_ID),
    ]
}

/// Leaf capabilities: MLS 1.0, suite 0x0003, the XMTP extensions, GroupContextExtensions
/// proposals, basic credentials. No GREASE (libxmtp's peers do not send it either).
pub fn leaf_capabilities() -> Capabilities {
    Capabilities::new(
        Some(&[ProtocolVersion::Mls10]),
        Some(&[CIPHERSUITE]),
        Some(&supported_extensions()),
        Some(&[ProposalType::GroupContextExtensions]),
        Some(&[CredentialType::Basic]),
    )
}

/// The MLS credential for an inbox: BasicCredential(identity = protobuf MlsCredential).
pub fn credential_for(inbox_id: &str, key: &InstallationKey) -> CredentialWithKey {
    let identity = MlsCredential {
        inbox_id: inbox_id.to_owned(),
    }
    .encode_to_vec();
    CredentialWithKey {
        credential: BasicCredential::new(identity).into(),
        signature_key: key.public_key().to_vec().into(),
    }
}

/// Reads the inbox id out of a leaf's BasicCredential identity bytes.
pub fn inbox_id_from_identity(identity: &[u8]) -> Option<String> {
    MlsCredential::decode(identity).ok().map(|c| c.inbox_id)
}

/// Leaf extensions: ApplicationId = inbox id ASCII, as libxmtp writes it.
pub fn leaf_extensions(inbox_id: &str) -> Extensions<openmls::prelude::LeafNode> {
    Extensions::single(Extension::ApplicationId(ApplicationIdExtension::new(
        inbox_id.as_bytes(),
    )))
    .expect("a single extension is always valid")
}

/// Builds (and stores in the provider) a last-resort key package for this installation. The
/// node hands the same package to every requester, so its init key must survive many welcomes.
pub fn build_key_package(
    provider: &XmtpProvider,
    key: &InstallationKey,
    inbox_id: &str,
) -> Result<KeyPackageBundle, KeyPackageNewError> {
    KeyPackage::builder()
        .leaf_node_capabilities(leaf_capabilities())
        .leaf_node_extensions(leaf_extensions(inbox_id))
        .mark_as_last_resort()
        .build(CIPHERSUITE, provider, key, credential_for(inbox_id, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::prelude::tls_codec::{Deserialize, Serialize};
    use openmls::prelude::KeyPackageIn;
    use openmls_traits::OpenMlsProvider;

    const INBOX: &str = "fcd18d86276d7a99fe522dba9660c420f03c8648785ada7c5daae232a3df77a9";

    #[test]
    fn key_package_has_exactly_the_xmtp_fields() {
        let provider = XmtpProvider::new();
        let key = InstallationKey::generate();
        let bundle = build_key_package(&provider, &key, INBOX).unwrap();
        let bytes = bundle.key_package().tls_serialize_detached().unwrap();
        // MLS 1.0, suite 3.
        assert_eq!(&bytes[..4], &[0, 1, 0, 3]);
        let kp = KeyPackageIn::tls_deserialize_exact(&bytes)
            .unwrap()
            .validate(provider.crypto(), ProtocolVersion::Mls10)
            .unwrap();
        let caps = kp.leaf_node().capabilities();
        let ext: Vec<u16> = caps.extensions().iter().map(|e| u16::from(*e)).collect();
        assert_eq!(ext, vec![0x000a, 0x0001, 0xff00, 0xff01, 0xff02, 0xf000]);
        let props: Vec<u16> = caps.proposals().iter().map(|p| u16::from(*p)).collect();
        assert_eq!(props, vec![0x0007]);
        assert_eq!(caps.ciphersuites().len(), 1);
        assert!(kp.last_resort());
        assert_ne!(
            kp.hpke_init_key().tls_serialize_detached().unwrap(),
            kp.leaf_node()
                .encryption_key()
                .tls_serialize_detached()
                .unwrap()
        );
        // No X-Wing (0xff03) nor welcome pointer (0xff04) extensions.
        for e in kp.extensions().iter() {
            let t = u16::from(e.extension_type());
            assert!(t != 0xff03 && t != 0xff04, "unexpected extension {t:#x}");
        }
        let app_id = kp.leaf_node().extensions().application_id().unwrap();
        assert_eq!(app_id.as_slice(), INBOX.as_bytes());
        let cred = BasicCredential::try_from(kp.leaf_node().credential().clone()).unwrap();
        assert_eq!(&cred.identity()[..2], &[0x0a, 0x40]);
        assert_eq!(
            inbox_id_from_identity(cred.identity()).as_deref(),
            Some(INBOX)
        );
        assert_eq!(kp.leaf_node().signature_key().as_slice(), key.public_key());
    }
}
