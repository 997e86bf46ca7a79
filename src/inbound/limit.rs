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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before full (refilled) ones are dropped, bounding memory under many senders.
const MAX_BUCKETS: usize = 100_000;

/// The `limit` label of refused commands in `herald_limited_requests_total`.
pub const METRIC_LIMIT: &str = "chat_command";

/// Token buckets keyed by channel and sender inbox. A rate of 0 disables the limit.
pub struct ChatLimiter {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl ChatLimiter {
    /// `per_minute` commands sustained per sender and channel, bursts up to `burst` (at
    /// least 1). `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
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
        if self.rate == 0.0 {
            return true;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (channel.to_owned(), inbox.to_owned());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            // A bucket that has refilled is the same as no bucket.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.refilled).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
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
