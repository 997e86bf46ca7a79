//! Per-tenant quotas (`[quotas]` in the config): active subscribers and the recipients of
//! unfinished announcements. Past one, the request gets 429 `quota_exceeded` with a reason and
//! `Retry-After` (pending deliveries drain by themselves; subscribers need an unsubscribe or a
//! higher quota).
//!
//! Both figures are sums over the tenant's rows (its unfinished announcements, its active
//! subscribers), too costly to compute on every request: on Postgres the pending-delivery sum
//! was the most expensive statement of `POST …/announcements` (1.2 ms, growing with the backlog;
//! issue 15). So a replica reads each figure at most once per [`FRESH_FOR`] per tenant (one
//! request reads; the others keep admitting on the previous figure until it lands), adds what
//! it admits itself meanwhile, and admits while that stays under the quota. A refusal is always
//! decided on a fresh read. What other replicas admitted in the last second or two can
//! therefore pass the quota by that much; the quota bounds a backlog, it is not a ledger.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;
use super::rate_limit::refuse;
use super::AppState;
use crate::domain::{Address, ChannelId, TenantId};

/// Seconds a client is asked to wait after a quota refusal.
const QUOTA_RETRY_AFTER_SECS: u64 = 60;

/// How long a figure read from the store is used for admissions.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Tenants kept before stale entries are dropped.
const MAX_TENANTS: usize = 10_000;

/// One replica's recent reads of a per-tenant figure, plus what it admitted since.
#[derive(Debug, Default)]
pub struct Tally {
    figures: Mutex<HashMap<TenantId, Figure>>,
}

/// A figure as last read, with this replica's admissions since.
#[derive(Debug)]
struct Figure {
    n: u64,
    read_at: Instant,
    /// When a request started reading it again, if one is under way.
    reading_since: Option<Instant>,
}

impl Tally {
    /// The figure to admit against, or `None` when this caller must read it from the store
    /// (then [`Tally::store`] it). A figure read less than [`FRESH_FOR`] ago is used as it is
    /// (with this replica's admissions). Once it is older, the first caller reads it again and
    /// the callers meanwhile keep using the old one until that read lands: a burst of
    /// concurrent requests at a stale figure ran one read each (about nine per refresh in the
    /// REST bench, each summing the tenant's whole backlog; issue 15). A read that never lands
    /// (its request was dropped) is given up after [`FRESH_FOR`].
    fn fresh_or_read(&self, tenant: &TenantId) -> Option<u64> {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        let figure = figures.get_mut(tenant)?;
        if figure.read_at.elapsed() < FRESH_FOR {
            return Some(figure.n);
        }
        match figure.reading_since {
            Some(since) if since.elapsed() < FRESH_FOR => Some(figure.n),
            _ => {
                figure.reading_since = Some(Instant::now());
                None
            }
        }
    }

    fn store(&self, tenant: &TenantId, n: u64) {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        if figures.len() >= MAX_TENANTS {
            figures.retain(|_, f| f.read_at.elapsed() < FRESH_FOR);
        }
        let figure = Figure {
            n,
            read_at: Instant::now(),
            reading_since: None,
        };
        figures.insert(tenant.clone(), figure);
    }

    /// Counts `n` more against the tenant until the next read.
    pub fn admitted(&self, tenant: &TenantId, n: u64) {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(figure) = figures.get_mut(tenant) {
            figure.n = figure.n.saturating_add(n);
        }
    }
}

/// The per-tenant figures one replica keeps for its quota checks.
#[derive(Debug, Default)]
pub struct QuotaTallies {
    /// Recipients of unfinished announcements.
    pub pending: Tally,
    /// Active subscribers.
    pub subscribers: Tally,
}

/// Refuses a request that would take the tenant past `max_active_subscribers`, counting all
/// `adding` addresses as new (an import is checked before knowing which are already active).
pub async fn ensure_subscriber_room(
    state: &AppState,
    tenant: &TenantId,
    adding: u64,
) -> Result<(), ApiError> {
    let max = state.quotas.max_active_subscribers;
    if max == 0 || adding == 0 {
        return Ok(());
    }
    let tally = &state.quota_tallies.subscribers;
    if let Some(active) = tally.fresh_or_read(tenant) {
        if active.saturating_add(adding) <= max {
            tally.admitted(tenant, adding);
            return Ok(());
        }
    }
    let active = state.store.active_subscriber_count(tenant).await?;
    tally.store(tenant, active);
    if active.saturating_add(adding) <= max {
        tally.admitted(tenant, adding);
        return Ok(());
    }
    Err(refuse(
        "active_subscribers",
        "quota_exceeded",
        format!(
            "active subscriber quota reached: the tenant has {active} of {max}, and this request adds up to {adding}"
        ),
        QUOTA_RETRY_AFTER_SECS,
    ))
}

/// [`ensure_subscriber_room`] for one address, which passes anyway when it is already active
/// (subscribing it again changes nothing).
pub async fn ensure_room_for(
    state: &AppState,
    tenant: &TenantId,
    channel: &ChannelId,
    address: &Address,
) -> Result<(), ApiError> {
    match ensure_subscriber_room(state, tenant, 1).await {
        Err(refused) => {
            let status = state.store.subscriber_status(channel, address).await?;
            if status.as_deref() == Some("active") {
                Ok(())
            } else {
                Err(refused)
            }
        }
        ok => ok,
    }
}

/// Refuses a new announcement while the tenant's unfinished announcements already have
/// `max_pending_deliveries` recipients. The caller reports the admitted announcement's
/// recipients with `state.quota_tallies.pending.admitted`.
pub async fn ensure_delivery_room(state: &AppState, tenant: &TenantId) -> Result<(), ApiError> {
    let max = state.quotas.max_pending_deliveries;
    if max == 0 {
        return Ok(());
    }
    let tally = &state.quota_tallies.pending;
    if tally
        .fresh_or_read(tenant)
        .is_some_and(|pending| pending < max)
    {
        return Ok(());
    }
    let pending = state.store.unfinished_recipient_count(tenant).await?;
    tally.store(tenant, pending);
    if pending < max {
        return Ok(());
    }
    Err(refuse(
        "pending_deliveries",
        "quota_exceeded",
        format!(
            "pending delivery quota reached: the tenant's unfinished announcements have {pending} recipients (quota {max}); retry when they have been sent"
        ),
        QUOTA_RETRY_AFTER_SECS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_admissions_until_the_next_read() {
        let tally = Tally::default();
        let tenant = TenantId::from_trusted("ten_a".to_owned());
        assert_eq!(
            tally.fresh_or_read(&tenant),
            None,
            "nothing read yet: ask the store"
        );
        tally.admitted(&tenant, 5);
        assert_eq!(
            tally.fresh_or_read(&tenant),
            None,
            "admissions alone are not a figure"
        );
        tally.store(&tenant, 10);
        tally.admitted(&tenant, 5);
        assert_eq!(tally.fresh_or_read(&tenant), Some(15));
        tally.store(&tenant, 3);
        assert_eq!(
            tally.fresh_or_read(&tenant),
            Some(3),
            "a read replaces the estimate"
        );
    }

    #[test]
    fn one_caller_reads_a_stale_figure_and_the_others_use_the_old_one_meanwhile() {
        let tally = Tally::default();
        let tenant = TenantId::from_trusted("ten_a".to_owned());
        tally.store(&tenant, 10);
        let long_ago = Instant::now() - 2 * FRESH_FOR;
        let age = |read_at: Instant, reading_since: Option<Instant>| {
            let mut figures = tally.figures.lock().unwrap();
            let figure = figures.get_mut(&tenant).unwrap();
            (figure.read_at, figure.reading_since) = (read_at, reading_since);
        };
        age(long_ago, None);
        assert_eq!(
            tally.fresh_or_read(&tenant),
            None,
            "stale: this caller reads"
        );
        assert_eq!(
            tally.fresh_or_read(&tenant),
            Some(10),
            "a read is under way: the old figure meanwhile"
        );
        tally.admitted(&tenant, 2);
        assert_eq!(tally.fresh_or_read(&tenant), Some(12));
        age(long_ago, Some(long_ago));
        assert_eq!(
            tally.fresh_or_read(&tenant),
            None,
            "a read that never landed is given up"
        );
        tally.store(&tenant, 4);
        assert_eq!(tally.fresh_or_read(&tenant), Some(4), "the read landed");
    }
}
