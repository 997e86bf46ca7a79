//! Per-tenant quotas (`[quotas]` in the config): active subscribers and the recipients of
//! unfinished announcements. Past one, the request gets 429 `quota_exceeded` with a reason and
//! `Retry-After` (pending deliveries drain by themselves; subscribers need an unsubscribe or a
//! higher quota).
//!
//! Both figures are sums over the tenant's rows (its unfinished announcements, its active
//! subscribers), too costly to compute on every request: on Postgres the pending-delivery sum
//! was the most expensive statement of `POST …/announcements` (1.2 ms, growing with the backlog;
//! issue 15). So a replica reads each figure at most once per [`FRESH_FOR`] per tenant, adds what
//! it admits itself meanwhile, and admits while that stays under the quota. A refusal is always
//! decided on a fresh read. What other replicas admitted in the last second can therefore pass
//! the quota by that much; the quota bounds a backlog, it is not a ledger.

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
    figures: Mutex<HashMap<TenantId, (u64, Instant)>>,
}

impl Tally {
    /// The figure if it was read less than [`FRESH_FOR`] ago (with this replica's admissions).
    fn fresh(&self, tenant: &TenantId) -> Option<u64> {
        let figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        figures
            .get(tenant)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(n, _)| *n)
    }

    fn store(&self, tenant: &TenantId, n: u64) {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        if figures.len() >= MAX_TENANTS {
            figures.retain(|_, (_, at)| at.elapsed() < FRESH_FOR);
        }
        figures.insert(tenant.clone(), (n, Instant::now()));
    }

    /// Counts `n` more against the tenant until the next read.
    pub fn admitted(&self, tenant: &TenantId, n: u64) {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((count, _)) = figures.get_mut(tenant) {
            *count = count.saturating_add(n);
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
    if let Some(active) = tally.fresh(tenant) {
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
    if tally.fresh(tenant).is_some_and(|pending| pending < max) {
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
            tally.fresh(&tenant),
            None,
            "nothing read yet: ask the store"
        );
        tally.admitted(&tenant, 5);
        assert_eq!(
            tally.fresh(&tenant),
            None,
            "admissions alone are not a figure"
        );
        tally.store(&tenant, 10);
        tally.admitted(&tenant, 5);
        assert_eq!(tally.fresh(&tenant), Some(15));
        tally.store(&tenant, 3);
        assert_eq!(
            tally.fresh(&tenant),
            Some(3),
            "a read replaces the estimate"
        );
    }
}
