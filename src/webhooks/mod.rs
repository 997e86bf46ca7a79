//! Signed webhooks to tenants, following the Standard Webhooks specification: event types,
//! `whsec_` secrets and signatures ([`sign`]), the SSRF guard on endpoint URLs ([`guard`]) and
//! the HTTP sender ([`send`]). The dispatcher worker is `workers::webhooks`; the outbox and
//! the delivery log live in the store.

pub mod guard;
pub mod send;
pub mod sign;

use serde::Deserialize;

/// Every event type an endpoint can ask for.
pub const EVENT_TYPES: [&str; 5] = [
    "announcement.completed",
    "delivery.failed",
    "subscriber.subscribed",
    "subscriber.unsubscribed",
    "trigger.matched",
];

/// `[webhooks]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// CIDR blocks endpoint URLs may resolve into although they are private, loopback,
    /// link-local, multicast or unspecified addresses.
    pub allow_private: Vec<String>,
    /// Seconds one POST to an endpoint may take.
    pub timeout_secs: u64,
    /// Delay before each retry, in seconds; after the last one the attempt is given up.
    pub retry_schedule_secs: Vec<u64>,
    /// Seconds the previous secret keeps signing after a rotation.
    pub secret_overlap_secs: u64,
    /// How long after its timestamp a source row is captured, in milliseconds.
    pub capture_lag_ms: u64,
    /// How often an idle dispatcher looks for work, in milliseconds.
    pub poll_interval_ms: u64,
    /// Days a settled delivery (and its event) stays in the delivery log.
    pub retention_days: u32,
    /// Live endpoints one tenant may have.
    pub max_endpoints: u32,
}

impl WebhookConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), &'static str> {
        if guard::AllowList::parse(&self.allow_private).is_err() {
            return Err("webhooks.allow_private must hold CIDR blocks like \"127.0.0.1/32\"");
        }
        if !(1..=60).contains(&self.timeout_secs) {
            return Err("webhooks.timeout_secs must be between 1 and 60");
        }
        if self.max_endpoints == 0 {
            return Err("webhooks.max_endpoints must be at least 1");
        }
        if self.retention_days == 0 {
            return Err("webhooks.retention_days must be at least 1");
        }
        if self.poll_interval_ms == 0 {
            return Err("webhooks.poll_interval_ms must be at least 1");
        }
        Ok(())
    }
}
