//! The text every signer of an identity update signs.
//!
//! Verifiers rebuild it from the proto fields, so it must match libxmtp byte for byte:
//! header, inbox id, the client timestamp as RFC 3339 in whole seconds with `Z`, one
//! two-line entry per action, footer, and no trailing newline.

use chrono::{DateTime, SecondsFormat};

use super::{normalize_address, AssociationError, MemberId};
use crate::associations_proto::{identity_action::Kind, IdentityUpdate};

const HEADER: &str = "XMTP : Authenticate to inbox";
const FOOTER: &str = "For more info: https://xmtp.org/signatures";

/// Builds the signature text of `update`.
pub fn signature_text(update: &IdentityUpdate) -> Result<String, AssociationError> {
    let lines = update
        .actions
        .iter()
        .map(|action| action_line(action.kind.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "{HEADER}\n\nInbox ID: {}\nCurrent time: {}\n\n{}\n\n{FOOTER}",
        update.inbox_id,
        pretty_timestamp(update.client_timestamp_ns),
        lines.join("\n"),
    ))
}

fn action_line(kind: Option<&Kind>) -> Result<String, AssociationError> {
    Ok(
        match kind.ok_or(AssociationError::MissingField("identity_action.kind"))? {
            Kind::CreateInbox(c) => {
                format!(
                    "- Create inbox\n  (Owner: {})",
                    normalize_address(&c.initial_identifier)?
                )
            }
            Kind::Add(a) => {
                let member = member(a.new_member_identifier.as_ref())?;
                let verb = match member {
                    MemberId::Installation(_) => "Grant messaging access to app",
                    MemberId::Ethereum(_) => "Link address to inbox",
                    MemberId::Passkey(_) => "Link passkey to inbox",
                };
                format!("- {verb}\n  ({}: {})", label(&member), member.text_value())
            }
            Kind::Revoke(r) => {
                let member = member(r.member_to_revoke.as_ref())?;
                let verb = match member {
                    MemberId::Installation(_) => "Revoke messaging access from app",
                    MemberId::Ethereum(_) => "Unlink address from inbox",
                    MemberId::Passkey(_) => "Unlink passkey from inbox",
                };
                format!("- {verb}\n  ({}: {})", label(&member), member.text_value())
            }
            Kind::ChangeRecoveryAddress(c) => format!(
                "- Change inbox recovery address\n  (Address: {})",
                normalize_address(&c.new_recovery_identifier)?
            ),
        },
    )
}

fn member(
    id: Option<&crate::associations_proto::MemberIdentifier>,
) -> Result<MemberId, AssociationError> {
    MemberId::from_proto(id.ok_or(AssociationError::MissingField("member_identifier"))?)
}

fn label(member: &MemberId) -> &'static str {
    match member {
        MemberId::Ethereum(_) => "Address",
        MemberId::Installation(_) => "ID",
        MemberId::Passkey(_) => "Passkey",
    }
}

/// Seconds-precision RFC 3339 in UTC, as libxmtp prints it (the cast mirrors libxmtp's).
fn pretty_timestamp(ns: u64) -> String {
    DateTime::from_timestamp_nanos(ns as i64).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::associations_proto::{
        AddAssociation, ChangeRecoveryAddress, CreateInbox, IdentityAction, RevokeAssociation,
    };

    fn action(kind: Kind) -> IdentityAction {
        IdentityAction { kind: Some(kind) }
    }

    /// The full-text vector of libxmtp's `unsigned_actions.rs` test `create_signatures`.
    #[test]
    fn matches_the_libxmtp_create_signatures_vector() {
        let owner = "0x1234567890abcdef1234567890abcdef12345678";
        let linked = MemberId::Ethereum("0x4567890abcdef1234567890abcdef12345678123".into());
        let app = MemberId::Installation(vec![1, 2, 3]);
        let update = IdentityUpdate {
            inbox_id: super::super::inbox_id(owner, 0).unwrap(),
            client_timestamp_ns: 12,
            actions: vec![
                action(Kind::CreateInbox(CreateInbox {
                    initial_identifier: owner.into(),
                    ..Default::default()
                })),
                action(Kind::Add(AddAssociation {
                    new_member_identifier: Some(linked.to_proto()),
                    ..Default::default()
                })),
                action(Kind::Add(AddAssociation {
                    new_member_identifier: Some(app.to_proto()),
                    ..Default::default()
                })),
                action(Kind::Revoke(RevokeAssociation {
                    member_to_revoke: Some(linked.to_proto()),
                    ..Default::default()
                })),
                action(Kind::Revoke(RevokeAssociation {
                    member_to_revoke: Some(app.to_proto()),
                    ..Default::default()
                })),
                action(Kind::ChangeRecoveryAddress(ChangeRecoveryAddress {
                    new_recovery_identifier: "0x7890abcdef1234567890abcdef12345678123456".into(),
                    ..Default::default()
                })),
            ],
        };
        let expected = "XMTP : Authenticate to inbox

Inbox ID: fcd18d86276d7a99fe522dba9660c420f03c8648785ada7c5daae232a3df77a9
Current time: 1970-01-01T00:00:00Z

- Create inbox
  (Owner: 0x1234567890abcdef1234567890abcdef12345678)
- Link address to inbox
  (Address: 0x4567890abcdef1234567890abcdef12345678123)
- Grant messaging access to app
  (ID: 010203)
- Unlink address from inbox
  (Address: 0x4567890abcdef1234567890abcdef12345678123)
- Revoke messaging access from app
  (ID: 010203)
- Change inbox recovery address
  (Address: 0x7890abcdef1234567890abcdef12345678123456)

For more info: https://xmtp.org/signatures";
        assert_eq!(signature_text(&update).unwrap(), expected);
    }

    #[test]
    fn timestamp_is_truncated_to_seconds() {
        assert_eq!(
            pretty_timestamp(1_717_194_525_999_999_999),
            "2024-05-31T22:28:45Z"
        );
    }
}
