//! Per-tenant quotas (`[quotas]` in the config): active subscribers and the recipients of
//! unfinished announcements. Past one, the request gets 429 `quota_exceeded` with a reason and
//! `Retry-After` (pending deliveries drain by themselves; subscribers need an unsubscribe or a
//! higher quota).

use super::error::ApiError;
use super::rate_limit::refuse;
use super::AppState;
use crate::domain::{Address, ChannelId, TenantId};

/// Seconds a client is asked to wait after a quota refusal.
const QUOTA_RETRY_AFTER_SECS: u64 = 60;

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
    let active = state.store.active_subscriber_count(tenant).await?;
    if active.saturating_add(adding) <= max {
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
/// `max_pending_deliveries` recipients.
pub async fn ensure_delivery_room(state: &AppState, tenant: &TenantId) -> Result<(), ApiError> {
    let max = state.quotas.max_pending_deliveries;
    if max == 0 {
        return Ok(());
    }
    let pending = state.store.unfinished_recipient_count(tenant).await?;
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
