//! What the delivery pipeline persists, behind [`PipelineStore`] (kept apart from the API's
//! [`Store`](super::Store) so the two grow independently).
//!
//! Concurrency model: a worker first takes the **sender lease** of one channel identity
//! (`channel_senders`, a row lease with an ever-growing token), then claims that channel's due
//! deliveries in batches. The token fences everything done under the lease: MLS state writes
//! ([`PipelineStore::state_write`]) and settlements ([`PipelineStore::settle`]) are refused once
//! another worker took the lease over, so two processes can never fork a channel's MLS state.
//! Nothing lives only in memory: an expired lease (crashed worker) simply becomes claimable.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::{Address, AnnouncementId, ChannelId};

#[path = "pipeline_sql.rs"]
mod sql;
pub(crate) use sql::PipelineDialect;

/// Priority rank for ordering: lower is more urgent.
pub const RANK: &str = "CASE priority WHEN 'critical' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END";

/// What [`PipelineStore::settle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Rows settled.
    pub rows: u64,
    /// The settled rows' announcements, by id: (id, status before, status after), read in the
    /// settle's own transaction.
    pub announcements: Vec<(String, String, String)>,
}

/// A held sender lease. `token` fences writes made under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderLease {
    pub channel: ChannelId,
    pub owner: String,
    pub token: i64,
    /// When it was taken: the token of the lease the channel's state was last written under
    /// (`None`: never written). A client kept open since then is still current.
    pub state_token: Option<i64>,
}

/// What the pipeline needs to act as a channel.
pub struct ChannelSecret {
    pub address: Address,
    pub wallet_key_sealed: Vec<u8>,
    pub inbox_id: Option<String>,
    pub deleted: bool,
}

/// One delivery claimed under a lease.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub announcement_id: AnnouncementId,
    pub address: Address,
    /// Failed attempts so far (rate-limit pauses do not count).
    pub attempts: i32,
}

/// How a claimed delivery ends this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    Delivered,
    /// Final, not an error: e.g. `not_on_xmtp`, `unsubscribed`.
    Skipped(&'static str),
    /// Back to pending at `at`. `failed_attempt` is false for rate-limit pauses.
    Retry {
        at: DateTime<Utc>,
        reason: String,
        failed_attempt: bool,
    },
    /// Dead letter: retries exhausted or a permanent error.
    Failed(String),
    /// Not attempted: back to pending now, untouched (a drain ended with a batch claimed
    /// ahead of time).
    Release,
}

impl SettleOutcome {
    /// Column values: (status, reason, next_attempt_at, attempts increment).
    pub fn columns(
        &self,
        now: DateTime<Utc>,
    ) -> (&'static str, Option<String>, DateTime<Utc>, i32) {
        match self {
            SettleOutcome::Delivered => ("delivered", None, now, 0),
            SettleOutcome::Skipped(r) => ("skipped", Some((*r).to_owned()), now, 0),
            SettleOutcome::Retry {
                at,
                reason,
                failed_attempt,
            } => (
                "pending",
                Some(reason.clone()),
                *at,
                i32::from(*failed_attempt),
            ),
            SettleOutcome::Failed(r) => ("failed", Some(r.clone()), now, 1),
            SettleOutcome::Release => ("pending", None, now, 0),
        }
    }
}

/// An announcement's topic and recent pace, for its progress view (ETA), as its row keeps
/// them (migrations/postgres/0023).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    /// The channel topic it targets (None: every active subscriber).
    pub topic: Option<String>,
    /// Start of the pace's window: the older of the two marks settle takes 30 s apart (the
    /// window spans the last 30-60 s of sending), or the creation before the second mark.
    pub since: DateTime<Utc>,
    /// Its deliveries settled by a worker (not at creation) since `since`.
    pub settled_since: i64,
    /// When a worker last settled one of its deliveries (None: never).
    pub settled_at: Option<DateTime<Utc>>,
}

/// The row [`PipelineStore::announcement_pace`] reads.
#[derive(sqlx::FromRow)]
pub(crate) struct PaceRow {
    pub topic: Option<String>,
    pub since: DateTime<Utc>,
    pub settled_since: i64,
    pub settled_at: Option<DateTime<Utc>>,
}

/// A stored token bucket (`xmtp_budgets`): the deployment-wide XMTP write budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub tokens: f64,
    pub refilled_at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    /// Grows by one on every write; a write succeeds only over the version it read.
    pub version: i64,
}

/// Wake-ups from other processes, as started by [`PipelineStore::listen_others`].
#[async_trait]
pub trait WakeListener: Send {
    /// Waits for the next wake-up. An error means the connection was lost: listen again.
    async fn recv(&mut self) -> StoreResult<()>;
}

/// Persistence of the delivery pipeline. Implemented by both backends.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Whether the channel's most urgent due pending delivery is critical.
    async fn due_is_critical(&self, channel: &ChannelId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// The stored budget `key`, if any.
    async fn budget_get(&self, key: &str) -> StoreResult<Option<BudgetRow>>;
    /// Stores `row` if the stored version is still `row.version - 1` (version 1: only if no row
    /// exists yet). Returns whether it was stored; false means another writer won the race.
    async fn budget_put(&self, key: &str, row: &BudgetRow) -> StoreResult<bool>;
    /// Channels that have work: due pending deliveries (most urgent priority first), then
    /// channels whose XMTP identity is not registered yet. Leased channels may be included;
    /// [`PipelineStore::acquire_sender`] filters them.
    async fn sender_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ChannelId>>;
    /// Takes the channel's sender lease if free, expired, or still held by `owner` itself (a
    /// worker whose release failed, e.g. during a database outage, need not wait for its own
    /// lease to expire; owners are unique per worker); returns the new token. A hold-off set
    /// by a release has no owner, so it is respected.
    async fn acquire_sender(
        &self,
        channel: &ChannelId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SenderLease>>;
    /// Extends a held lease; false when it was lost.
    async fn renew_sender(&self, lease: &SenderLease, until: DateTime<Utc>) -> StoreResult<bool>;
    /// Gives the lease up, recording the last error (or clearing it). With `hold_until`,
    /// nobody takes the channel before then (a back-off after an error).
    async fn release_sender(
        &self,
        lease: &SenderLease,
        error: Option<&str>,
        hold_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// The channel's sealed wallet key and registration state (deleted channels included).
    async fn channel_secret(&self, channel: &ChannelId) -> StoreResult<Option<ChannelSecret>>;
    /// Records the registered XMTP identity on the channel.
    async fn set_channel_identity(
        &self,
        channel: &ChannelId,
        inbox_id: &str,
        installation_id: &str,
    ) -> StoreResult<()>;
    /// Claims up to `limit` due pending deliveries of the leased channel, critical first.
    async fn claim_deliveries(
        &self,
        lease: &SenderLease,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Which of `addresses` are still active subscribers of the channel.
    async fn active_subscribers(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<HashSet<Address>>;
    /// The text of an announcement and its rich content (`None`: plain text).
    async fn announcement_message(
        &self,
        id: &AnnouncementId,
    ) -> StoreResult<Option<(String, Option<crate::domain::RichContent>)>>;
    /// How many of the claimed rows `ids` are still pending under `lease`: fewer than asked
    /// when the announcement was cancelled since the claim (a sender checks this just before
    /// publishing, and gives the batch up then).
    async fn claimed_pending(&self, lease: &SenderLease, ids: &[i64]) -> StoreResult<u64>;
    /// Settles claimed rows in one transaction (only rows still under `lease`, and only
    /// pending ones, except that a row cancelled while its message was being published may
    /// still become `delivered`), then moves their announcements to `sending` or `completed`.
    /// Returns rows settled and the touched announcements' statuses before and after.
    async fn settle(
        &self,
        lease: &SenderLease,
        results: &[(i64, SettleOutcome)],
        now: DateTime<Utc>,
    ) -> StoreResult<Settled>;
    /// The announcement's topic and recent pace (None when it does not exist): one row read.
    async fn announcement_pace(&self, id: &AnnouncementId) -> StoreResult<Option<Pace>>;
    /// When the oldest pending delivery that is due at `now` became due (None: none is due).
    /// Served by the partial `deliveries_due` index (the only query that may use it);
    /// backs `herald_delivery_lag_seconds`.
    async fn oldest_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>>;
    /// Tells workers in other processes that work arrived (Postgres `NOTIFY`; SQLite has a
    /// single process, where the in-process wake suffices).
    async fn wake_others(&self) -> StoreResult<()>;
    /// Starts hearing other processes' [`PipelineStore::wake_others`] (Postgres `LISTEN` on a
    /// connection of its own). `None` where one process serves the database (SQLite).
    async fn listen_others(&self) -> StoreResult<Option<Box<dyn WakeListener>>>;

    /// Channel client state: one value.
    async fn state_get(&self, channel: &ChannelId, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;
    /// Channel client state: every entry whose key starts with `prefix`, in key order.
    async fn state_scan(
        &self,
        channel: &ChannelId,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Channel client state: every entry under any of `prefixes`, in one query (no order).
    async fn state_scan_many(
        &self,
        channel: &ChannelId,
        prefixes: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Applies upserts (`Some`) and deletes (`None`) atomically, only while `lease` is still
    /// the channel's current lease, and records its token as the channel's `state_token`.
    /// Returns false (writing nothing) when it was lost.
    async fn state_write(
        &self,
        lease: &SenderLease,
        batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> StoreResult<bool>;
}

/// The smallest key greater than every key starting with `prefix` (None: no upper bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A half-open key range `[start, end)`.
pub type KeyRange = (Vec<u8>, Vec<u8>);

/// Key ranges `[prefix, prefix_end)` for the prefixes that have an end, and the (all-0xff)
/// prefixes that do not, which must be scanned open-ended on their own.
pub fn prefix_ranges(prefixes: &[Vec<u8>]) -> (Vec<KeyRange>, Vec<&[u8]>) {
    let mut ranges = Vec::with_capacity(prefixes.len());
    let mut open = Vec::new();
    for p in prefixes {
        match prefix_end(p) {
            Some(end) => ranges.push((p.clone(), end)),
            None => open.push(p.as_slice()),
        }
    }
    (ranges, open)
}

/// Groups settlements with identical column values so each group is one statement.
pub fn group_outcomes(results: &[(i64, SettleOutcome)]) -> Vec<(SettleOutcome, Vec<i64>)> {
    let mut groups: Vec<(SettleOutcome, Vec<i64>)> = Vec::new();
    for (id, outcome) in results {
        match groups.iter_mut().find(|(o, _)| o == outcome) {
            Some((_, ids)) => ids.push(*id),
            None => groups.push((outcome.clone(), vec![*id])),
        }
    }
    groups
}

/// State entries as (key, value) pairs.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Collapses a state batch to the last write per key, split into upserts and deletes.
pub fn split_batch(batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> (Entries, Vec<Vec<u8>>) {
    let last: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = batch.into_iter().collect();
    let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => upserts.push((k, v)),
            None => deletes.push(k),
        }
    }
    (upserts, deletes)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_the_range() {
        assert_eq!(prefix_end(b"dm/"), Some(b"dm0".to_vec()));
        assert_eq!(prefix_end(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
