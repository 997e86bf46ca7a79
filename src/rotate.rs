//! Master-key rotation: `herald keys rotate-master --new-key-file F` re-seals every secret
//! sealed under the old master key (channel wallet keys, XMTP client state, webhook signing
//! secrets) under the new one.
//!
//! Without downtime: servers run with the new key as `master_key` and the old one as
//! `master_key_previous` (they seal under the new key and open both) while this runs. Each
//! value is re-sealed alone with a compare-and-set, so a worker writing the same state value
//! meanwhile wins (its value is already under the new key). A value that already opens under
//! the new key is skipped, so the run is resumable: a run stopped anywhere is simply started
//! again, and nothing is lost, because each value is always under one of the two keys.

use crate::crypto::MasterKey;
use crate::store::{Sealed, SealedAt, Store, StoreError};
use crate::xmtp::state::state_context;

/// Values read and re-sealed per batch.
pub const DEFAULT_BATCH: u32 = 500;

/// Why a rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The database failed; retryable (run again: finished values are skipped).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A value opens under neither key: the configured old key is wrong, or the value is
    /// corrupt. Not retryable. Names where the value lives, never its content.
    #[error("{0} opens under neither the old nor the new master key")]
    Unopenable(String),
}

impl RotateError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Values re-sealed under the new key by this run.
    pub resealed: u64,
    /// Values found already under the new key (an earlier run, or a server's write).
    pub already: u64,
    /// Whether every value was visited (false when `max_batches` stopped the run).
    pub finished: bool,
}

/// Re-seals every value that `old` opens under `new`, `batch` at a time; stops after
/// `max_batches` batches when given (how tests stop a run halfway).
pub async fn rotate_master(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
    batch: u32,
    max_batches: Option<u32>,
) -> Result<Rotation, RotateError> {
    let options = Pace {
        batch,
        max_batches,
        pause: std::time::Duration::ZERO,
    };
    rotate_master_with(store, old, new, options, |_| {}).await
}

/// How a run proceeds: values per batch, an optional stop, and a pause after each batch (to
/// spread the load of a large rotation on a busy database).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub batch: u32,
    pub max_batches: Option<u32>,
    pub pause: std::time::Duration,
}

/// [`rotate_master`], calling `progress` with the running totals after every batch (the CLI
/// prints them, so an operator sees how far a run got).
pub async fn rotate_master_with(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
    pace: Pace,
    mut progress: impl FnMut(&Rotation),
) -> Result<Rotation, RotateError> {
    let Pace {
        batch,
        max_batches,
        pause,
    } = pace;
    let batch = batch.max(1);
    let mut run = Rotation::default();
    let mut batches = 0u32;
    let more = |batches: &mut u32| {
        *batches += 1;
        max_batches.is_none_or(|max| *batches <= max)
    };
    let mut after = String::new();
    loop {
        if !more(&mut batches) {
            return Ok(run);
        }
        let page = store.sealed_wallets(&after, batch).await?;
        let Some(last) = page.last() else { break };
        if let SealedAt::Wallet { channel } = &last.at {
            after = channel.clone();
        }
        reseal_all(store, old, new, &page, &mut run).await?;
        progress(&run);
        pace_after_batch(pause).await;
    }
    let (mut channel, mut key) = (String::new(), Vec::new());
    loop {
        if !more(&mut batches) {
            return Ok(run);
        }
        let page = store.sealed_states((&channel, &key), batch).await?;
        let Some(last) = page.last() else { break };
        if let SealedAt::State { channel: c, key: k } = &last.at {
            (channel, key) = (c.clone(), k.clone());
        }
        reseal_all(store, old, new, &page, &mut run).await?;
        progress(&run);
        pace_after_batch(pause).await;
    }
    let mut after = String::new();
    loop {
        if !more(&mut batches) {
            return Ok(run);
        }
        let page = store.sealed_webhooks(&after, batch).await?;
        let Some(last) = page.last() else { break };
        if let SealedAt::Webhook { endpoint, .. } = &last.at {
            after = endpoint.clone();
        }
        reseal_all(store, old, new, &page, &mut run).await?;
        progress(&run);
        pace_after_batch(pause).await;
    }
    run.finished = true;
    Ok(run)
}

async fn pace_after_batch(pause: std::time::Duration) {
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
}

async fn reseal_all(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
    page: &[Sealed],
    run: &mut Rotation,
) -> Result<(), RotateError> {
    for sealed in page {
        let context = match &sealed.at {
            SealedAt::Wallet { channel } => channel.clone(),
            SealedAt::State { channel, key } => state_context(channel, key),
            SealedAt::Webhook { endpoint, .. } => endpoint.clone(),
        };
        if new.opens_with_current(&sealed.value, &context) {
            run.already += 1;
            continue;
        }
        let plain = old
            .open(&sealed.value, &context)
            .map_err(|_| RotateError::Unopenable(describe(&sealed.at)))?;
        let resealed = new.seal(&plain, &context);
        if store.reseal(&sealed.at, &sealed.value, &resealed).await? {
            run.resealed += 1;
        } else {
            // Written meanwhile by a server, which seals under the new key.
            run.already += 1;
        }
    }
    Ok(())
}

fn describe(at: &SealedAt) -> String {
    match at {
        SealedAt::Wallet { channel } => format!("the wallet key of channel {channel}"),
        SealedAt::State { channel, key } => {
            format!("client state {} of channel {channel}", hex::encode(key))
        }
        SealedAt::Webhook { endpoint, previous } => {
            let which = if *previous { "previous " } else { "" };
            format!("the {which}signing secret of webhook {endpoint}")
        }
    }
}
