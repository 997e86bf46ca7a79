//! Look-ups the d14n API needs on top of the v3 ones (`service::d14n`): the stored form of
//! a message a client just published, and the newest item of a topic.

use xmtp_proto::mls_api::{group_message, welcome_message, GroupMessage, WelcomeMessage};

use super::Store;

impl Store {
    /// The stored group message with exactly this ciphertext (unique per group: the store
    /// deduplicates on it).
    pub fn find_group_message(&self, group_id: &[u8], data: &[u8]) -> Option<GroupMessage> {
        let inner = self.lock();
        inner.groups.get(group_id)?.iter().rev().find_map(|m| {
            matches!(&m.version, Some(group_message::Version::V1(v)) if v.data == data)
                .then(|| m.clone())
        })
    }

    /// The stored welcome with exactly this payload (unique per installation).
    pub fn find_welcome(&self, installation_key: &[u8], data: &[u8]) -> Option<WelcomeMessage> {
        let inner = self.lock();
        inner
            .welcomes
            .get(installation_key)?
            .iter()
            .rev()
            .find(|m| match &m.version {
                Some(welcome_message::Version::V1(v)) => v.data == data,
                Some(welcome_message::Version::WelcomePointer(p)) => p.welcome_pointer == data,
                None => false,
            })
            .cloned()
    }

    /// The newest welcome of an installation.
    pub fn newest_welcome(&self, installation_key: &[u8]) -> Option<WelcomeMessage> {
        self.lock()
            .welcomes
            .get(installation_key)
            .and_then(|v| v.last().cloned())
    }

    /// An installation's current key package with its upload number (1, 2, ... across all
    /// installations, in upload order).
    pub fn key_package_with_id(&self, installation_key: &[u8]) -> Option<(u64, Vec<u8>)> {
        let inner = self.lock();
        let id = *inner.key_package_ids.get(installation_key)?;
        let bytes = inner.key_packages.get(installation_key)?.clone();
        Some((id, bytes))
    }
}
