//! Group messages and welcomes: storing them (deduplicated, ids assigned) and reading them
//! back a page at a time.

use xmtp_proto::mls_api::{
    group_message, welcome_message, GroupMessage, PagingInfo, WelcomeMessage,
};

use super::journal::{Record, RecordKind};
use super::{digest, now_ns, paging, Store, Ticket};

impl Store {
    /// Stores group messages (already validated). Duplicates of stored messages are
    /// accepted and dropped, like xmtp-node-go's unique index on sha256(group_id || data).
    pub fn add_group_messages(&self, messages: Vec<group_message::V1>) -> Ticket {
        let mut inner = self.lock();
        let mut ticket = None;
        for mut m in messages {
            let seen = digest(&m.group_id, &m.data);
            if inner.group_seen.contains(&seen) {
                continue;
            }
            m.id = inner.last_group_id + 1;
            m.created_ns = now_ns();
            let record = RecordKind::Group(GroupMessage {
                version: Some(group_message::Version::V1(m)),
            });
            ticket = self
                .commit_digested(&mut inner, Record { kind: Some(record) }, Some(seen))
                .or(ticket);
        }
        Ticket(ticket)
    }

    /// Stores welcomes (already validated), deduplicated on sha256(installation_key || data).
    pub fn add_welcomes(&self, messages: Vec<welcome_message::Version>) -> Ticket {
        let mut inner = self.lock();
        let mut ticket = None;
        for mut version in messages {
            let id = inner.last_welcome_id + 1;
            let seen = match &mut version {
                welcome_message::Version::V1(v) => {
                    (v.id, v.created_ns) = (id, now_ns());
                    digest(&v.installation_key, &v.data)
                }
                welcome_message::Version::WelcomePointer(p) => {
                    (p.id, p.created_ns) = (id, now_ns());
                    digest(&p.installation_key, &p.welcome_pointer)
                }
            };
            if inner.welcome_seen.contains(&seen) {
                continue;
            }
            let record = RecordKind::Welcome(WelcomeMessage {
                version: Some(version),
            });
            ticket = self
                .commit_digested(&mut inner, Record { kind: Some(record) }, Some(seen))
                .or(ticket);
        }
        Ticket(ticket)
    }

    /// One page of a group's messages.
    pub fn query_group(
        &self,
        group_id: &[u8],
        paging: Option<&PagingInfo>,
    ) -> (Vec<GroupMessage>, PagingInfo) {
        let inner = self.lock();
        let items = inner
            .groups
            .get(group_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        paging::page(items, group_id_of, paging)
    }

    /// One page of an installation's welcomes.
    pub fn query_welcomes(
        &self,
        key: &[u8],
        paging: Option<&PagingInfo>,
    ) -> (Vec<WelcomeMessage>, PagingInfo) {
        let inner = self.lock();
        let items = inner
            .welcomes
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        paging::page(items, welcome_id_of, paging)
    }

    /// The newest message of a group, if any.
    pub fn newest_group_message(&self, group_id: &[u8]) -> Option<GroupMessage> {
        self.lock()
            .groups
            .get(group_id)
            .and_then(|v| v.last().cloned())
    }
}

/// The id of a stored group message.
pub fn group_id_of(m: &GroupMessage) -> u64 {
    match &m.version {
        Some(group_message::Version::V1(v)) => v.id,
        None => 0,
    }
}

/// The id of a stored welcome.
pub fn welcome_id_of(m: &WelcomeMessage) -> u64 {
    match &m.version {
        Some(welcome_message::Version::V1(v)) => v.id,
        Some(welcome_message::Version::WelcomePointer(p)) => p.id,
        None => 0,
    }
}
