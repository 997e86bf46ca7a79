//! Per-sender limits on chat commands, so one XMTP inbox flooding a channel's inbox cannot
//! spend the channel's XMTP write budget on replies (or the database on consent rows) and
//! starve its announcements.
//!
//! One token bucket per (channel, sender inbox): `per_minute` sustained, bursts up to `burst`.
//! A command over the limit is claimed like any other message (so it is never handled later),
//! but neither applied nor answered, and counted in
//! `herald_limited_requests_total{limit="chat_command"}`. A person typing commands never meets
//! the default (10 at once, then one every 6 s); the sender simply writes again later.
//!
//! In-process state, like the HTTP limits: a channel's inbox is read by one worker at a time
//! (its sender lease), so the buckets of one process see all of a channel's traffic unless the
//! lease moves to another replica, which then starts with full buckets.

use std::time::Instant;

use token_bucket::{KeyedBuckets, Rate};

/// The `limit` label of refused commands in `herald_limited_requests_total`.
pub const METRIC_LIMIT: &str = "chat_command";

/// Token buckets keyed by channel and sender inbox. A rate of 0 disables the limit.
pub struct ChatLimiter {
    buckets: KeyedBuckets<(String, String)>,
}

impl ChatLimiter {
    /// `per_minute` commands sustained per sender and channel, bursts up to `burst` (at
    /// least 1). `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            buckets: KeyedBuckets::new(Rate::per_minute(per_minute, burst)),
        }
    }

    /// No limit: what tests and tools that drive the inbound step by hand use.
    pub fn unlimited() -> Self {
        Self::new(0, 1)
    }

    /// Takes one command from `inbox`'s bucket on `channel`; false (and counted) when the
    /// sender is over its limit.
    pub fn allow(&self, channel: &str, inbox: &str) -> bool {
        let allowed = self.allow_at(channel, inbox, Instant::now());
        if !allowed {
            metrics::counter!("herald_limited_requests_total", "limit" => METRIC_LIMIT)
                .increment(1);
        }
        allowed
    }

    fn allow_at(&self, channel: &str, inbox: &str, now: Instant) -> bool {
        self.buckets
            .take((channel.to_owned(), inbox.to_owned()), 1.0, now)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sender_gets_its_burst_then_one_command_per_refill() {
        let limiter = ChatLimiter::new(6, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allow_at("ch_a", "inbox1", t0));
        }
        assert!(!limiter.allow_at("ch_a", "inbox1", t0), "burst spent");
        assert!(limiter.allow_at("ch_a", "inbox2", t0), "another sender");
        assert!(limiter.allow_at("ch_b", "inbox1", t0), "another channel");
        // 6 per minute: one token back after 10 s, not before.
        assert!(!limiter.allow_at("ch_a", "inbox1", t0 + Duration::from_secs(9)));
        assert!(limiter.allow_at("ch_a", "inbox1", t0 + Duration::from_secs(15)));
        assert!(!limiter.allow_at("ch_a", "inbox1", t0 + Duration::from_secs(15)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = ChatLimiter::unlimited();
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.allow_at("ch_a", "inbox1", t0)));
    }
}
