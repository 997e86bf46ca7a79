//! Keeping DMs complete: when a member inbox gains (or revokes) installations (identity updates after the
//! DM was created), add them with one commit that also moves the membership extension to the
//! new sequence ids, then welcome them. libxmtp's commit validation requires exactly that:
//! the installations added must equal the diff the identity logs imply.

use std::collections::{HashMap, HashSet};

use openmls::prelude::{KeyPackage, LeafNodeIndex};

use xmtp_proto::identity_api::PublishIdentityUpdateRequest;

use super::{now_ns, Client, DmBook, DmRecord};
use crate::error::ClientError;
use crate::identity::{revoke_installations_update, Wallet};
use crate::mls::dm;
use crate::mls::group_ext::read_membership;

impl Client {
    /// Brings every DM's membership up to date with the identity logs, our own inbox's
    /// included: after another installation of our inbox registered, one commit per DM adds
    /// it (and welcomes it); after a revocation, one commit per DM removes the revoked leaves.
    /// Each DM is synced first, so the commit builds on the newest epoch. Returns the number
    /// of DMs checked.
    pub async fn refresh_memberships(&self) -> Result<usize, ClientError> {
        let mut book = self.book.lock().await;
        let peers: Vec<String> = book.records.keys().cloned().collect();
        let records: Vec<DmRecord> = book.records.values().cloned().collect();
        self.sync_records(&mut book, records).await?;
        self.add_new_installations(&mut book, &peers).await?;
        Ok(peers.len())
    }

    /// Revokes `installations` from our inbox with the signature of `wallet`, which must be
    /// the inbox's recovery address. Installations already gone are skipped; an empty list
    /// publishes nothing. DMs drop the revoked leaves on the next [`Self::refresh_memberships`]
    /// (or send) of a remaining installation.
    pub async fn revoke_installations(
        &self,
        wallet: &Wallet,
        installations: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        if wallet.address() != self.address {
            return Err(ClientError::WalletMismatch {
                stored: self.address.clone(),
                given: wallet.address(),
            });
        }
        let states = self
            .inbox_states(std::slice::from_ref(&self.inbox_id))
            .await?;
        let current: HashSet<Vec<u8>> = states
            .get(&self.inbox_id)
            .map(|s| s.state.installations().into_iter().collect())
            .unwrap_or_default();
        let todo: Vec<Vec<u8>> = installations
            .iter()
            .filter(|i| current.contains(*i))
            .cloned()
            .collect();
        if todo.is_empty() {
            return Ok(todo);
        }
        let update = revoke_installations_update(&self.inbox_id, wallet, &todo, now_ns());
        self.transport
            .publish_identity_update(PublishIdentityUpdateRequest {
                identity_update: Some(update),
            })
            .await?;
        Ok(todo)
    }

    /// The installations our inbox lists now (from the identity log, not cached).
    pub async fn own_installations(&self) -> Result<Vec<Vec<u8>>, ClientError> {
        let states = self
            .inbox_states(std::slice::from_ref(&self.inbox_id))
            .await?;
        Ok(states
            .get(&self.inbox_id)
            .map(|s| s.state.installations())
            .unwrap_or_default())
    }

    /// Brings the membership of the DMs with `peers` up to date with the identity logs.
    pub(super) async fn add_new_installations(
        &self,
        book: &mut DmBook,
        peers: &[String],
    ) -> Result<(), ClientError> {
        let mut known: HashMap<String, u64> = HashMap::new();
        for peer in peers {
            if let Some(rec) = book.records.get(peer) {
                for (inbox, seq) in &rec.membership {
                    let e = known.entry(inbox.clone()).or_insert(*seq);
                    *e = (*e).min(*seq);
                }
            }
        }
        if known.is_empty() {
            return Ok(());
        }
        let changed: HashSet<String> = self
            .inboxes_with_updates(&known)
            .await?
            .into_iter()
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let states = self
            .inbox_states(&changed.iter().cloned().collect::<Vec<_>>())
            .await?;
        for peer in peers {
            self.refresh_dm(book, peer, &states).await?;
        }
        Ok(())
    }

    async fn refresh_dm(
        &self,
        book: &mut DmBook,
        peer: &str,
        states: &HashMap<String, super::InboxState>,
    ) -> Result<(), ClientError> {
        let Some(mut record) = book.records.get(peer).cloned() else {
            return Ok(());
        };
        let gid = record.group_id_bytes();
        self.ensure_group(book, &gid).await?;
        let Some(group) = book.groups.get_mut(&gid) else {
            return Ok(());
        };
        let present: HashSet<Vec<u8>> = dm::member_installations(group).into_iter().collect();
        let previously_failed: Vec<Vec<u8>> = read_membership(group.extensions())
            .map(|m| m.failed_installations)
            .unwrap_or_default();
        let mut membership = record.membership.clone();
        let mut missing: Vec<(String, Vec<u8>)> = Vec::new();
        let mut current: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
        for (inbox, seq) in &record.membership {
            let Some(state) = states.get(inbox).filter(|s| s.sequence_id > *seq) else {
                continue;
            };
            membership.insert(inbox.clone(), state.sequence_id);
            let installs: HashSet<Vec<u8>> = state.state.installations().into_iter().collect();
            for inst in &installs {
                let known = present.contains(inst) || previously_failed.contains(inst);
                if !known && inst[..] != self.key.public_key() {
                    missing.push((inbox.clone(), inst.clone()));
                }
            }
            current.insert(inbox.clone(), installs);
        }
        // Leaves of changed inboxes whose installation was revoked leave in the same commit.
        let removals: Vec<LeafNodeIndex> = group
            .members()
            .filter(|m| {
                dm::member_inbox_id(m)
                    .and_then(|inbox| current.get(&inbox))
                    .is_some_and(|installs| !installs.contains(&m.signature_key))
            })
            .map(|m| m.index)
            .collect();
        if missing.is_empty() && removals.is_empty() {
            // Nothing to change (e.g. a wallet was linked): the old sequence ids stay valid.
            return Ok(());
        }
        let fetched = self
            .fetch_key_packages_for(missing.iter().map(|m| m.1.clone()).collect())
            .await?;
        let kps = self.validate_key_packages(&missing, &fetched);
        let (mut recipients, mut failed) = (Vec::new(), Vec::new());
        // Earlier failures stay listed: an extra entry is harmless, a missing one invalid.
        failed.extend(previously_failed.iter().cloned());
        for (inbox, inst) in &missing {
            let (ok, bad) = self.recipients_for(inbox, std::slice::from_ref(inst), &kps);
            recipients.extend(ok);
            failed.extend(bad);
        }
        if recipients.is_empty() && removals.is_empty() {
            return Ok(());
        }
        let key_packages: Vec<KeyPackage> =
            recipients.iter().map(|r| r.key_package.clone()).collect();
        let out = dm::update_installations(
            &self.provider,
            &self.key,
            group,
            key_packages,
            removals,
            &membership,
            &failed,
        )?;
        // Pending commit durable first; a crash before merge is resolved by the next sync.
        self.persist(Vec::new()).await?;
        self.send_group_messages(vec![out.commit], false).await?;
        dm::merge_pending(&self.provider, group)?;
        let cursor = self.latest_message_id(&gid).await?;
        record.membership = membership;
        record.cursor = record.cursor.max(cursor);
        self.persist(vec![Self::record_write(&record)]).await?;
        book.records.insert(peer.to_owned(), record);
        if recipients.is_empty() {
            return Ok(());
        }
        let welcomes = self.wrap_welcomes(&out.welcome, &recipients, cursor)?;
        self.send_welcomes(welcomes).await
    }
}
