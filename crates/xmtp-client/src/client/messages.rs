//! Sending text (one or many): DMs created as needed, brought up to date, then encrypted and
//! published in batches. Reading replies lives in [`super::reading`].

use std::collections::{HashMap, HashSet};

use super::dms::Durable;
pub(super) use super::reading::message_id;
use super::{Client, DmBook, DmRecord, DmStatus};
use crate::error::ClientError;

/// How long a DM counts as up to date after a send checked it (synced, installations added).
const CHECK_FRESH: std::time::Duration = std::time::Duration::from_secs(30);
/// One message to send (text, or a rich [`Content`](crate::mls::content::Content)).
#[derive(Debug, Clone)]
pub struct OutgoingText {
    /// Recipient inbox id.
    pub peer_inbox_id: String,
    /// What it says.
    pub content: crate::mls::content::Content,
    /// Deterministic key: the same (key, content) sent twice shows once to receivers.
    pub idempotency_key: String,
}

/// Ciphertexts whose ratchet state is durable, ready to publish ([`Client::seal_batch`]).
#[derive(Debug)]
pub struct SealedBatch {
    ciphertexts: Vec<Vec<u8>>,
}

/// How much [`Client::send_batch_with`] checks before encrypting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Process each DM's new group messages first (the peer's key-update commits), so we
    /// encrypt in the current epoch. Costs one QueryGroupMessages per DM.
    pub sync_groups: bool,
    /// Add installations recipients gained since the DM was created. Costs one
    /// GetIdentityUpdates per 50 inboxes, plus a commit per DM that changed.
    pub add_new_installations: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            sync_groups: true,
            add_new_installations: true,
        }
    }
}

impl Client {
    /// Sends one text message to `peer_inbox_id`, creating the DM first if needed.
    pub async fn send_text(
        &self,
        peer_inbox_id: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), ClientError> {
        let item = OutgoingText {
            peer_inbox_id: peer_inbox_id.to_owned(),
            content: text.into(),
            idempotency_key: idempotency_key.to_owned(),
        };
        self.send_batch(vec![item])
            .await?
            .pop()
            .expect("one result per item")
    }

    /// Sends many messages: creates missing DMs in one batch, brings each DM up to date
    /// (incoming commits, installations the peer gained), encrypts everything, persists the
    /// advanced ratchets once, then publishes in batched SendGroupMessages calls. The outer
    /// error fails the whole batch; inner results are per item, in order.
    pub async fn send_batch(
        &self,
        items: Vec<OutgoingText>,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        self.send_batch_with(items, SendOptions::default()).await
    }

    /// [`Client::send_batch`] with explicit checks. Skipping `sync_groups` is safe for a
    /// burst right after a synced send (receivers keep 3 past epochs), not as a habit.
    pub async fn send_batch_with(
        &self,
        items: Vec<OutgoingText>,
        options: SendOptions,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let (results, sealed) = self.seal_batch(items, options).await?;
        self.publish_sealed(sealed).await?;
        Ok(results)
    }

    /// The first half of [`Client::send_batch_with`]: creates missing DMs, brings DMs up to
    /// date, encrypts, and makes the advanced ratchets durable, so the ciphertexts may be
    /// published any time after ([`Client::publish_sealed`]). While one sealed batch is being
    /// published the next one can be sealed. The per-item results hold for the batch once it
    /// is published.
    pub async fn seal_batch(
        &self,
        items: Vec<OutgoingText>,
        options: SendOptions,
    ) -> Result<(Vec<Result<(), ClientError>>, SealedBatch), ClientError> {
        let items_len = items.len();
        let peers: Vec<String> = items
            .iter()
            .map(|i| i.peer_inbox_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut book = self.book.lock().await;
        let existing: HashSet<String> = peers
            .iter()
            .filter(|p| {
                book.records
                    .get(*p)
                    .is_some_and(|r| r.status == DmStatus::Ready)
            })
            .cloned()
            .collect();
        let t0 = std::time::Instant::now();
        // New DMs are written with the advanced ratchets below, in one write (their commits
        // and welcomes are out; a crash before it orphans them, as it would before any write).
        let (dms, created) = self
            .create_dms_in(&mut book, &peers, Durable::ByCaller)
            .await?;
        let t_create = t0.elapsed();
        match self
            .encrypt_durably(
                &mut book, &items, &peers, &existing, &dms, &created, options,
            )
            .await
        {
            Ok(sealed) => {
                self.prefetch
                    .note_ready(created.iter().map(|r| &r.peer_inbox_id));
                tracing::debug!(target: "xmtp_client::timing", n = items_len, new_dms = created.len(), ?t_create, total = ?t0.elapsed(), "seal_batch");
                Ok(sealed)
            }
            Err(e) => {
                // The new DMs were not written: a retry creates fresh ones.
                self.forget_new_dms(&mut book, &created);
                Err(e)
            }
        }
    }

    /// The rest of [`Client::seal_batch`] once missing DMs exist: older DMs brought up to date,
    /// items encrypted, ratchets and the records of the DMs just `created` written.
    #[allow(clippy::too_many_arguments)]
    async fn encrypt_durably(
        &self,
        book: &mut DmBook,
        items: &[OutgoingText],
        peers: &[String],
        existing: &HashSet<String>,
        dms: &HashMap<String, Result<Vec<u8>, ClientError>>,
        created: &[DmRecord],
        options: SendOptions,
    ) -> Result<(Vec<Result<(), ClientError>>, SealedBatch), ClientError> {
        let ready: Vec<String> = peers
            .iter()
            .filter(|p| matches!(dms.get(*p), Some(Ok(_))))
            .cloned()
            .collect();
        let gids: Vec<Vec<u8>> = ready
            .iter()
            .filter_map(|p| book.records.get(p).map(|r| r.group_id_bytes()))
            .collect();
        self.ensure_groups(book, &gids).await?;
        // A DM created by this call was built from the current identity states and its cursor
        // is our commit: nothing to sync or add yet, so only older DMs are checked.
        let older: Vec<String> = ready
            .iter()
            .filter(|p| existing.contains(*p))
            .cloned()
            .collect();
        let now = std::time::Instant::now();
        let check = self.needing_checks(book, older, now, options).await?;
        if options.sync_groups {
            let records: Vec<DmRecord> = check
                .iter()
                .filter_map(|p| book.records.get(p).cloned())
                .collect();
            self.sync_records(book, records).await?;
        }
        if options.add_new_installations {
            self.add_new_installations(book, &check).await?;
        }
        if options.sync_groups && options.add_new_installations {
            for peer in &ready {
                book.checked.insert(peer.clone(), now);
            }
        }
        let t_checks = now.elapsed();
        let (results, ciphertexts) = self.encrypt_items(book, items, dms)?;
        let t_encrypt = now.elapsed() - t_checks;
        // Advanced ratchets (and new DMs) are durable before any ciphertext leaves: no
        // generation reuse.
        let records = created.iter().map(Self::record_write).collect();
        self.persist(records).await?;
        let t_persist = now.elapsed() - t_checks - t_encrypt;
        tracing::debug!(target: "xmtp_client::timing", n = items.len(), ?t_checks, ?t_encrypt, ?t_persist, "seal parts");
        Ok((results, SealedBatch { ciphertexts }))
    }

    /// Publishes a batch [`Client::seal_batch`] made durable (batched SendGroupMessages).
    /// A failed publish can be retried, or the batch dropped: its items are then sent again
    /// with new ciphertexts.
    pub async fn publish_sealed(&self, sealed: SealedBatch) -> Result<(), ClientError> {
        let t0 = std::time::Instant::now();
        let n = sealed.ciphertexts.len();
        self.send_group_messages(sealed.ciphertexts, true).await?;
        tracing::debug!(target: "xmtp_client::timing", n, took = ?t0.elapsed(), "publish_sealed");
        Ok(())
    }

    /// Which of `peers` (existing DMs) a send brings up to date first. A DM checked in the
    /// last [`CHECK_FRESH`] is skipped (a burst of announcements does not re-query every DM:
    /// a peer commit missed meanwhile leaves us one epoch behind, which receivers still read,
    /// as they keep past epochs), unless a member's identity changed since: adding or
    /// removing an installation commits, and a commit must build on the latest epoch.
    async fn needing_checks(
        &self,
        book: &DmBook,
        peers: Vec<String>,
        now: std::time::Instant,
        options: SendOptions,
    ) -> Result<Vec<String>, ClientError> {
        let (mut check, fresh): (Vec<String>, Vec<String>) = peers.into_iter().partition(|p| {
            book.checked
                .get(p)
                .is_none_or(|at| now.duration_since(*at) >= CHECK_FRESH)
        });
        if fresh.is_empty() || !options.add_new_installations {
            check.extend(fresh);
            return Ok(check);
        }
        let mut known: HashMap<String, u64> = HashMap::new();
        for rec in fresh.iter().filter_map(|p| book.records.get(p)) {
            for (inbox, seq) in &rec.membership {
                let e = known.entry(inbox.clone()).or_insert(*seq);
                *e = (*e).min(*seq);
            }
        }
        let changed: HashSet<String> = self
            .inboxes_with_updates(&known)
            .await?
            .into_iter()
            .collect();
        check.extend(fresh.into_iter().filter(|p| {
            book.records
                .get(p)
                .is_some_and(|r| r.membership.keys().any(|i| changed.contains(i)))
        }));
        Ok(check)
    }

    /// Group id of our DM with `peer_inbox_id`, if one is ready.
    pub async fn dm_group_id(&self, peer_inbox_id: &str) -> Option<Vec<u8>> {
        let book = self.book.lock().await;
        book.records
            .get(peer_inbox_id)
            .filter(|r| r.status == DmStatus::Ready)
            .map(|r| r.group_id_bytes())
    }

    /// Every ready DM we can read, as (peer inbox id, group id): the primary DM per peer and
    /// further DMs peers created with us. The topics a reader follows.
    pub async fn dm_group_ids(&self) -> Vec<(String, Vec<u8>)> {
        let book = self.book.lock().await;
        book.records
            .values()
            .filter(|r| r.status == DmStatus::Ready)
            .chain(book.secondary.values())
            .map(|r| (r.peer_inbox_id.clone(), r.group_id_bytes()))
            .collect()
    }
}
