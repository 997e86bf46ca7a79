//! Encrypting a batch of outgoing texts: payloads grouped by DM, DMs encrypted in parallel.

use std::collections::HashMap;

use openmls::prelude::MlsGroup;

use super::messages::OutgoingText;
use super::{parallel, Client, DmBook};
use crate::error::ClientError;
use crate::mls::content::envelope;
use crate::mls::dm;

/// Per item: `Ok` if encrypted, else why not; plus every ciphertext to publish.
type Encrypted = (Vec<Result<(), ClientError>>, Vec<Vec<u8>>);

impl Client {
    /// Encrypts `items` whose DM is in `dms` (peer → group id or the peer's error). The groups
    /// must be resident. A group's items are encrypted in item order, so its ratchet
    /// generations follow the order of the batch.
    pub(super) fn encrypt_items(
        &self,
        book: &mut DmBook,
        items: &[OutgoingText],
        dms: &HashMap<String, Result<Vec<u8>, ClientError>>,
    ) -> Result<Encrypted, ClientError> {
        // Payloads grouped by DM in item order (a group's ratchet advances in that order);
        // distinct DMs are encrypted in parallel.
        let mut results = Vec::with_capacity(items.len());
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut payloads: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for item in items {
            let result = match dms.get(&item.peer_inbox_id) {
                Some(Ok(_)) => {
                    let gid = book
                        .records
                        .get(&item.peer_inbox_id)
                        .map(|r| r.group_id_bytes())
                        .unwrap_or_default();
                    let payload = envelope(item.content.encode_in(&gid), &item.idempotency_key);
                    payloads
                        .entry(gid.clone())
                        .or_insert_with(|| {
                            order.push(gid);
                            Vec::new()
                        })
                        .push(payload);
                    Ok(())
                }
                Some(Err(e)) => Err(clone_peer_error(e)),
                None => Err(ClientError::UnknownInbox(item.peer_inbox_id.clone())),
            };
            results.push(result);
        }
        if let Some(gid) = order.iter().find(|g| !book.groups.contains_key(*g)) {
            return Err(ClientError::CorruptState(format!(
                "DM group {} not loaded",
                hex::encode(gid)
            )));
        }
        let mut work: Vec<(Vec<u8>, MlsGroup, Vec<Vec<u8>>)> = order
            .into_iter()
            .filter_map(|gid| {
                let group = book.groups.remove(&gid)?;
                let p = payloads.remove(&gid).unwrap_or_default();
                Some((gid, group, p))
            })
            .collect();
        let encrypted = parallel::map_mut(&mut work, |(_, group, payloads)| {
            payloads
                .iter()
                .map(|p| dm::encrypt(&self.provider, &self.key, group, p))
                .collect::<Result<Vec<_>, _>>()
        });
        for (gid, group, _) in work {
            book.groups.insert(gid, group);
        }
        let mut ciphertexts = Vec::new();
        for batch in encrypted {
            ciphertexts.extend(batch?);
        }
        Ok((results, ciphertexts))
    }
}

/// Per-peer DM errors fan out to every item for that peer; keep kind and retry class.
fn clone_peer_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::UnknownInbox(p) => ClientError::UnknownInbox(p.clone()),
        ClientError::NoKeyPackages(p) => ClientError::NoKeyPackages(p.clone()),
        other => ClientError::CorruptState(other.to_string()),
    }
}
