//! The XMTP group-context extensions of a DM and how to read them back.
//!
//! A receiving libxmtp validates these strictly (research §4, §6): 0xf000 must be a DM between
//! the committer's inbox and the receiver's inbox, 0xff00 must have empty admin lists, 0xff01
//! must name every member inbox with a real identity-update sequence id, 0xff02 must decode.

use std::collections::HashMap;

use openmls::prelude::{
    CredentialType, Extension, ExtensionType, Extensions, GroupContext, ProposalType,
    RequiredCapabilitiesExtension, UnknownExtension,
};
use prost::Message as _;
use xmtp_proto::mls_contents::{
    membership_policy, metadata_policy, permissions_update_policy, ConversationType, DmMembers,
    GroupMembership, GroupMetadataV1, GroupMutableMetadataV1, GroupMutablePermissionsV1, Inbox,
    Inboxes, MembershipPolicy, MetadataPolicy, PermissionsUpdatePolicy, PolicySet,
};

use super::keypackage::{
    GROUP_MEMBERSHIP_EXTENSION_ID, GROUP_PERMISSIONS_EXTENSION_ID, IMMUTABLE_METADATA_EXTENSION_ID,
    MUTABLE_METADATA_EXTENSION_ID,
};

/// Metadata keys a DM member may update (libxmtp's DM policy set allows all of them).
const DM_METADATA_KEYS: [&str; 7] = [
    "group_name",
    "description",
    "group_image_url_square",
    "message_disappear_from_ns",
    "message_disappear_in_ns",
    "minimum_supported_protocol_version",
    "app_data",
];

/// Everything a DM's group context is built from.
#[derive(Debug, Clone)]
pub struct DmSpec {
    /// Our inbox (the creator, DM member one).
    pub creator_inbox_id: String,
    /// The peer inbox (DM member two).
    pub peer_inbox_id: String,
    /// Inbox id → sequence id of that inbox's latest identity update.
    pub membership: HashMap<String, u64>,
    /// Installations of member inboxes left out because their key package was unusable.
    pub failed_installations: Vec<Vec<u8>>,
}

/// The full group-context extension list for a new DM.
pub fn dm_extensions(spec: &DmSpec) -> Extensions<GroupContext> {
    let metadata = GroupMetadataV1 {
        conversation_type: ConversationType::Dm as i32,
        creator_account_address: String::new(),
        creator_inbox_id: spec.creator_inbox_id.clone(),
        dm_members: Some(DmMembers {
            dm_member_one: Some(Inbox {
                inbox_id: spec.creator_inbox_id.clone(),
            }),
            dm_member_two: Some(Inbox {
                inbox_id: spec.peer_inbox_id.clone(),
            }),
        }),
        oneshot_message: None,
    };
    Extensions::from_vec(vec![
        unknown(
            IMMUTABLE_METADATA_EXTENSION_ID,
            tls_opaque(&metadata.encode_to_vec()),
        ),
        unknown(
            MUTABLE_METADATA_EXTENSION_ID,
            dm_mutable_metadata().encode_to_vec(),
        ),
        membership_extension(&spec.membership, &spec.failed_installations),
        unknown(
            GROUP_PERMISSIONS_EXTENSION_ID,
            dm_permissions().encode_to_vec(),
        ),
        Extension::RequiredCapabilities(required_capabilities()),
    ])
    .expect("extension types are distinct")
}

/// The 0xff01 extension for a membership map.
pub fn membership_extension(members: &HashMap<String, u64>, failed: &[Vec<u8>]) -> Extension {
    let membership = GroupMembership {
        members: members.clone(),
        failed_installations: failed.to_vec(),
    };
    unknown(GROUP_MEMBERSHIP_EXTENSION_ID, membership.encode_to_vec())
}

/// Reads the 0xff01 membership map from a group context's extensions.
pub fn read_membership(extensions: &Extensions<GroupContext>) -> Option<GroupMembership> {
    let raw = unknown_data(extensions, GROUP_MEMBERSHIP_EXTENSION_ID)?;
    GroupMembership::decode(raw).ok()
}

/// Reads the 0xf000 metadata (stripping the TLS length prefix).
pub fn read_metadata(extensions: &Extensions<GroupContext>) -> Option<GroupMetadataV1> {
    let raw = unknown_data(extensions, IMMUTABLE_METADATA_EXTENSION_ID)?;
    let body = strip_tls_opaque(raw)?;
    GroupMetadataV1::decode(body).ok()
}

fn unknown_data(extensions: &Extensions<GroupContext>, id: u16) -> Option<&[u8]> {
    match extensions.unknown(id) {
        Some(UnknownExtension(data)) => Some(data.as_slice()),
        None => None,
    }
}

fn unknown(id: u16, data: Vec<u8>) -> Extension {
    Extension::Unknown(id, UnknownExtension(data))
}

/// RequiredCapabilities as libxmtp sets them: the four XMTP extensions plus LastResort and
/// ApplicationId, GroupContextExtensions proposals, basic credentials.
fn required_capabilities() -> RequiredCapabilitiesExtension {
    RequiredCapabilitiesExtension::new(
        &[
            ExtensionType::Unknown(GROUP_MEMBERSHIP_EXTENSION_ID),
            ExtensionType::Unknown(MUTABLE_METADATA_EXTENSION_ID),
            ExtensionType::Unknown(GROUP_PERMISSIONS_EXTENSION_ID),
            ExtensionType::Unknown(IMMUTABLE_METADATA_EXTENSION_ID),
            ExtensionType::LastResort,
            ExtensionType::ApplicationId,
        ],
        &[ProposalType::GroupContextExtensions],
        &[CredentialType::Basic],
    )
}

/// DM mutable metadata: empty name/description/image, no admins.
fn dm_mutable_metadata() -> GroupMutableMetadataV1 {
    let attributes = ["group_name", "description", "group_image_url_square"]
        .into_iter()
        .map(|k| (k.to_owned(), String::new()))
        .collect();
    GroupMutableMetadataV1 {
        attributes,
        admin_list: Some(Inboxes { inbox_ids: vec![] }),
        super_admin_list: Some(Inboxes { inbox_ids: vec![] }),
    }
}

/// libxmtp's DM policy set: nobody adds/removes members or admins, anyone edits metadata.
fn dm_permissions() -> GroupMutablePermissionsV1 {
    let deny_members = || MembershipPolicy {
        kind: Some(membership_policy::Kind::Base(
            membership_policy::BasePolicy::Deny as i32,
        )),
    };
    let deny_permissions = || PermissionsUpdatePolicy {
        kind: Some(permissions_update_policy::Kind::Base(
            permissions_update_policy::PermissionsBasePolicy::Deny as i32,
        )),
    };
    let allow_metadata = MetadataPolicy {
        kind: Some(metadata_policy::Kind::Base(
            metadata_policy::MetadataBasePolicy::Allow as i32,
        )),
    };
    GroupMutablePermissionsV1 {
        policies: Some(PolicySet {
            add_member_policy: Some(deny_members()),
            remove_member_policy: Some(deny_members()),
            update_metadata_policy: DM_METADATA_KEYS
                .into_iter()
                .map(|k| (k.to_owned(), allow_metadata.clone()))
                .collect(),
            add_admin_policy: Some(deny_permissions()),
            remove_admin_policy: Some(deny_permissions()),
            update_permissions_policy: Some(deny_permissions()),
        }),
    }
}

/// TLS `opaque<V>`: the MLS variable-length-integer length prefix, then the bytes.
fn tls_opaque(body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut out = Vec::with_capacity(len + 4);
    if len < 0x40 {
        out.push(len as u8);
    } else if len < 0x4000 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn strip_tls_opaque(raw: &[u8]) -> Option<&[u8]> {
    let first = *raw.first()?;
    let (len, skip) = match first >> 6 {
        0 => (usize::from(first & 0x3f), 1),
        1 => (
            usize::from(u16::from_be_bytes([first & 0x3f, *raw.get(1)?])),
            2,
        ),
        2 => {
            let b: [u8; 4] = raw.get(..4)?.try_into().ok()?;
            ((u32::from_be_bytes(b) & 0x3fff_ffff) as usize, 4)
        }
        _ => return None,
    };
    raw.get(skip..skip + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_opaque_round_trips_across_length_classes() {
        for n in [0usize, 5, 63, 64, 200, 16383, 16384] {
            let body = vec![0xabu8; n];
            let wrapped = tls_opaque(&body);
            assert_eq!(strip_tls_opaque(&wrapped), Some(body.as_slice()), "len {n}");
        }
        assert_eq!(tls_opaque(&[1, 2, 3])[0], 3);
        assert_eq!(&tls_opaque(&[0u8; 100])[..2], &[0x40, 100]);
    }

    #[test]
    fn dm_extensions_decode_back() {
        let spec = DmSpec {
            creator_inbox_id: "a".repeat(64),
            peer_inbox_id: "b".repeat(64),
            membership: HashMap::from([("a".repeat(64), 3), ("b".repeat(64), 9)]),
            failed_installations: vec![],
        };
        let exts = dm_extensions(&spec);
        let meta = read_metadata(&exts).unwrap();
        assert_eq!(meta.conversation_type, ConversationType::Dm as i32);
        let dm = meta.dm_members.unwrap();
        assert_eq!(dm.dm_member_two.unwrap().inbox_id, "b".repeat(64));
        assert_eq!(read_membership(&exts).unwrap().members[&"b".repeat(64)], 9);
        assert!(exts.required_capabilities().is_some());
    }
}
