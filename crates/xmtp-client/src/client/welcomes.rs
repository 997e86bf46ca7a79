//! Joining DMs that others create with us: read our welcome topic, unwrap with the key
//! package's init key, join, check the group is a DM between real installations of the two
//! inboxes, and keep it for reading (and for sending, if we had no DM with that peer yet).

use std::collections::HashSet;

use openmls::prelude::{BasicCredential, KeyPackageBundle, KeyPackageRef};
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::OpenMlsProvider as _;
use prost::Message as _;
use xmtp_proto::mls_api::{
    welcome_message, PagingInfo, QueryWelcomeMessagesRequest, SortDirection, WelcomeMetadata,
};
use xmtp_proto::mls_contents::{ConversationType, WelcomeWrapperAlgorithm};

use super::{Client, DmBook, DmRecord, DmStatus};
use crate::error::ClientError;
use crate::mls::dm::{self, MlsError};
use crate::mls::group_ext::{read_membership, read_metadata};
use crate::mls::keypackage::inbox_id_from_identity;
use crate::mls::welcome::unwrap_welcome;

const WELCOME_CURSOR_KEY: &[u8] = b"client/welcome_cursor";
const KEY_PACKAGE_REF_PREFIX: &[u8] = b"kpref/";
const WELCOME_PAGE: u32 = 100;

/// Store key of the key-package reference for an init public key.
pub(super) fn key_package_ref_key(init_key: &[u8]) -> Vec<u8> {
    [KEY_PACKAGE_REF_PREFIX, hex::encode(init_key).as_bytes()].concat()
}

impl Client {
    /// Processes new welcomes for this installation and returns the peer inbox ids of the DMs
    /// joined. Welcomes that fail validation are skipped for good (as libxmtp does).
    pub async fn sync_welcomes(&self) -> Result<Vec<String>, ClientError> {
        let mut book = self.book.lock().await;
        let mut cursor: u64 = match self.store.get(WELCOME_CURSOR_KEY).await? {
            Some(raw) => String::from_utf8_lossy(&raw).parse().unwrap_or(0),
            None => 0,
        };
        let mut joined = Vec::new();
        loop {
            let req = QueryWelcomeMessagesRequest {
                installation_key: self.key.public_key().to_vec(),
                paging_info: Some(PagingInfo {
                    direction: SortDirection::Ascending as i32,
                    limit: WELCOME_PAGE,
                    id_cursor: cursor,
                }),
            };
            let page = self.transport.query_welcome_messages(req).await?.messages;
            let full = page.len() as u32 >= WELCOME_PAGE;
            for msg in page {
                let Some(welcome_message::Version::V1(v1)) = msg.version else {
                    continue;
                };
                cursor = cursor.max(v1.id);
                match self.join_welcome(&mut book, &v1).await {
                    Ok(Some(peer)) => joined.push(peer),
                    Ok(None) => {}
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => tracing::warn!(welcome.id = v1.id, error = %e, "skipping welcome"),
                }
            }
            if !full {
                break;
            }
        }
        self.persist(vec![(
            WELCOME_CURSOR_KEY.to_vec(),
            Some(cursor.to_string().into_bytes()),
        )])
        .await?;
        Ok(joined)
    }

    async fn join_welcome(
        &self,
        book: &mut DmBook,
        v1: &welcome_message::V1,
    ) -> Result<Option<String>, ClientError> {
        if v1.wrapper_algorithm != WelcomeWrapperAlgorithm::Curve25519 as i32 {
            return Ok(None);
        }
        let Some(raw_ref) = self
            .store
            .get(&key_package_ref_key(&v1.hpke_public_key))
            .await?
        else {
            return Ok(None);
        };
        let hash_ref: KeyPackageRef = serde_json::from_slice(&raw_ref)
            .map_err(|e| ClientError::CorruptState(e.to_string()))?;
        let bundle: Option<KeyPackageBundle> = self
            .provider
            .storage()
            .key_package(&hash_ref)
            .map_err(|e| ClientError::CorruptState(e.to_string()))?;
        let Some(bundle) = bundle else {
            return Ok(None);
        };
        let (welcome, metadata) =
            unwrap_welcome(&v1.data, &v1.welcome_metadata, bundle.init_private_key())?;
        let group = dm::join(&self.provider, &welcome)?;
        let peer = self.validate_dm(&group).await?;
        let gid = group.group_id().as_slice().to_vec();
        let record = DmRecord {
            peer_inbox_id: peer.clone(),
            group_id: hex::encode(&gid),
            status: DmStatus::Ready,
            cursor: WelcomeMetadata::decode(metadata.as_slice())
                .map(|m| m.message_cursor)
                .unwrap_or(0),
            membership: read_membership(group.extensions())
                .map(|m| m.members)
                .unwrap_or_default(),
            secondary: book
                .records
                .get(&peer)
                .is_some_and(|r| r.status == DmStatus::Ready),
        };
        self.persist(vec![Self::record_write(&record)]).await?;
        book.groups.insert(gid, group);
        book.put_record(record);
        Ok(Some(peer))
    }

    /// A joined group must be a DM between us and one peer, and every leaf must be a current
    /// installation of the inbox its credential names. Returns the peer inbox id.
    async fn validate_dm(&self, group: &openmls::prelude::MlsGroup) -> Result<String, ClientError> {
        let invalid =
            |why: &str| ClientError::Mls(MlsError::Openmls(format!("rejected welcome: {why}")));
        let meta = read_metadata(group.extensions()).ok_or_else(|| invalid("no DM metadata"))?;
        if meta.conversation_type != ConversationType::Dm as i32 {
            return Err(invalid("not a DM"));
        }
        let dm = meta.dm_members.ok_or_else(|| invalid("no DM members"))?;
        let members: Vec<String> = [dm.dm_member_one, dm.dm_member_two]
            .into_iter()
            .flatten()
            .map(|i| i.inbox_id)
            .collect();
        if members.len() != 2 || !members.contains(&self.inbox_id) {
            return Err(invalid("we are not a DM member"));
        }
        let peer = members
            .into_iter()
            .find(|m| *m != self.inbox_id)
            .unwrap_or_default();
        let states = self
            .inbox_states(&[peer.clone(), self.inbox_id.clone()])
            .await?;
        for m in group.members() {
            let inbox = BasicCredential::try_from(m.credential.clone())
                .ok()
                .and_then(|c| inbox_id_from_identity(c.identity()))
                .ok_or_else(|| invalid("leaf without an inbox credential"))?;
            let installs: HashSet<Vec<u8>> = states
                .get(&inbox)
                .map(|s| s.state.installations().into_iter().collect())
                .ok_or_else(|| invalid("leaf of a foreign inbox"))?;
            if !installs.contains(&m.signature_key) {
                return Err(invalid("leaf key is not an installation of its inbox"));
            }
        }
        Ok(peer)
    }
}
