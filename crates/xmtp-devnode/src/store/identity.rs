//! Inbox logs, their association state, and the address -> inbox index.
//!
//! Like xmtp-node-go, the node replays an inbox's whole log plus the new update and refuses
//! the update if any signature or association rule fails, caps a log at 256 updates, and
//! maps each associated address to the inbox that most recently added it.

use std::collections::HashMap;

use xmtp_proto::associations::{apply_update, AssociationError, AssociationState};
use xmtp_proto::associations_proto::IdentityUpdate;
use xmtp_proto::identity_api::get_identity_updates_response::IdentityUpdateLog;

use super::journal::{Record, RecordKind};
use super::{now_ns, Store, Ticket};

/// Most updates one inbox may have (xmtp-node-go's limit).
pub const MAX_INBOX_UPDATES: usize = 256;

/// Why an identity update was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The update breaks a signature or association rule. Not retryable.
    #[error(transparent)]
    Invalid(#[from] AssociationError),
    /// The inbox already has the maximum number of updates. Not retryable.
    #[error("inbox {0} already has {MAX_INBOX_UPDATES} identity updates")]
    LogFull(String),
}

#[derive(Default)]
pub(super) struct Identities {
    inboxes: HashMap<String, Inbox>,
    addresses: HashMap<String, String>,
}

struct Inbox {
    log: Vec<IdentityUpdateLog>,
    state: AssociationState,
}

impl Identities {
    /// Appends an accepted update; verification is repeated so replay at start rebuilds the
    /// state from the log alone (a record that no longer verifies is skipped with a warning).
    pub(super) fn apply(&mut self, log: IdentityUpdateLog) {
        let Some(update) = log.update.as_ref() else {
            return;
        };
        let inbox_id = update.inbox_id.clone();
        let before = self.inboxes.get(&inbox_id).map(|i| i.state.clone());
        let state = match apply_update(before.clone(), update) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(inbox.id = %inbox_id, error = %e, "skipping identity update that no longer verifies");
                return;
            }
        };
        let old_addresses = before.map(|s| s.addresses()).unwrap_or_default();
        let new_addresses = state.addresses();
        for gone in old_addresses.iter().filter(|a| !new_addresses.contains(a)) {
            if self.addresses.get(gone) == Some(&inbox_id) {
                self.addresses.remove(gone);
            }
        }
        for added in new_addresses.iter().filter(|a| !old_addresses.contains(a)) {
            self.addresses.insert(added.clone(), inbox_id.clone());
        }
        match self.inboxes.get_mut(&inbox_id) {
            Some(inbox) => {
                inbox.log.push(log);
                inbox.state = state;
            }
            None => {
                self.inboxes.insert(
                    inbox_id,
                    Inbox {
                        log: vec![log],
                        state,
                    },
                );
            }
        }
    }
}

impl Store {
    /// Validates `update` against its inbox's state and appends it with the next sequence id.
    pub fn publish_identity_update(&self, update: IdentityUpdate) -> Result<Ticket, IdentityError> {
        let mut inner = self.lock();
        let inbox = inner.identity.inboxes.get(&update.inbox_id);
        if inbox.is_some_and(|i| i.log.len() >= MAX_INBOX_UPDATES) {
            return Err(IdentityError::LogFull(update.inbox_id));
        }
        apply_update(inbox.map(|i| i.state.clone()), &update)?;
        let log = IdentityUpdateLog {
            sequence_id: inner.last_sequence_id + 1,
            server_timestamp_ns: now_ns(),
            update: Some(update),
        };
        Ok(Ticket(self.commit(
            &mut inner,
            Record {
                kind: Some(RecordKind::Identity(log)),
            },
        )))
    }

    /// The inbox's updates with a sequence id above `after`, oldest first.
    pub fn identity_updates(&self, inbox_id: &str, after: u64) -> Vec<IdentityUpdateLog> {
        let inner = self.lock();
        let Some(inbox) = inner.identity.inboxes.get(inbox_id) else {
            return Vec::new();
        };
        let start = inbox.log.partition_point(|l| l.sequence_id <= after);
        inbox.log[start..].to_vec()
    }

    /// The inbox an address currently belongs to.
    pub fn inbox_for_address(&self, address: &str) -> Option<String> {
        self.lock()
            .identity
            .addresses
            .get(&address.to_ascii_lowercase())
            .cloned()
    }
}
