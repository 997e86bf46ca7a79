//! The one token bucket of the workspace, used by every limit herald has: the HTTP limits
//! (per tenant, per public client), the chat-command limit, the deployment-wide XMTP write
//! budget (whose bucket lives in the database and uses only [`Rate`]'s math), and the local
//! XMTP node's emulation of the public network's write limit.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens per second; taking `cost`
//! tokens succeeds when that many are there, otherwise it says how long until they will be.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bucket's shape: sustained rate and burst. A rate of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens gained per second.
    pub per_second: f64,
    /// Most tokens a bucket holds (a new bucket starts full).
    pub burst: f64,
}

impl Rate {
    /// `per_minute` sustained, bursts up to `burst` (at least 1).
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
        }
    }

    /// `per_second` sustained, bursts up to `burst` (at least 1).
    pub fn per_second(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Whether this rate limits anything (a rate of 0 does not).
    pub fn is_unlimited(&self) -> bool {
        self.per_second <= 0.0
    }

    /// The tokens of a bucket that held `tokens` after `elapsed` more time.
    pub fn refilled(&self, tokens: f64, elapsed: Duration) -> f64 {
        (tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst)
    }

    /// How long a bucket holding `tokens` takes to hold `target` (zero if it already does).
    pub fn time_to(&self, tokens: f64, target: f64) -> Duration {
        if tokens >= target || self.is_unlimited() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((target - tokens) / self.per_second)
    }

    /// Takes `cost` tokens from a bucket holding `tokens`, or leaves it unchanged and says how
    /// long until they are there (a cost above the burst waits for a full bucket, then is
    /// still refused: callers cap what they ask for at the burst).
    pub fn take(&self, tokens: &mut f64, cost: f64) -> Result<(), Duration> {
        if *tokens >= cost {
            *tokens -= cost;
            Ok(())
        } else {
            Err(self.time_to(*tokens, cost.min(self.burst)))
        }
    }
}

/// Buckets kept before full (refilled) ones are dropped, so many distinct keys (spoofed
/// clients, many senders) cannot grow the table without bound.
pub const MAX_BUCKETS: usize = 100_000;

/// In-memory buckets of one [`Rate`], one per key, created full on first use.
pub struct KeyedBuckets<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq> KeyedBuckets<K> {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The shape of every bucket.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes `cost` tokens from `key`'s bucket at `now`, or says how long until they are
    /// there. An unlimited rate always allows.
    pub fn take(&self, key: K, cost: f64, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let rate = self.rate;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            // A bucket that has refilled is the same as no bucket.
            buckets.retain(|_, b| {
                rate.refilled(b.tokens, now.saturating_duration_since(b.at)) < rate.burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        bucket.tokens = rate.refilled(bucket.tokens, now.saturating_duration_since(bucket.at));
        bucket.at = now.max(bucket.at);
        rate.take(&mut bucket.tokens, cost)
    }

    /// Buckets currently held.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_token_per_refill() {
        let buckets = KeyedBuckets::new(Rate::per_minute(60, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            buckets.take("a", 1.0, t0).unwrap();
        }
        let wait = buckets.take("a", 1.0, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        buckets
            .take("b", 1.0, t0)
            .expect("keys have their own bucket");
        assert!(buckets
            .take("a", 1.0, t0 + Duration::from_millis(900))
            .is_err());
        buckets
            .take("a", 1.0, t0 + Duration::from_millis(1_100))
            .expect("one token per second refills");
    }

    #[test]
    fn a_refused_cost_takes_nothing() {
        let buckets = KeyedBuckets::new(Rate::per_minute(60, 10));
        let t0 = Instant::now();
        buckets.take("a", 6.0, t0).unwrap();
        assert_eq!(buckets.take("a", 6.0, t0), Err(Duration::from_secs(2)));
        buckets
            .take("a", 4.0, t0)
            .expect("the refused take took nothing");
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let buckets = KeyedBuckets::new(Rate::per_minute(0, 1));
        let t0 = Instant::now();
        assert!((0..1_000).all(|_| buckets.take(1u8, 1.0, t0).is_ok()));
        assert!(buckets.is_empty());
    }

    #[test]
    fn full_buckets_are_dropped_when_the_table_is_full() {
        let buckets = KeyedBuckets::new(Rate::per_second(1, 1));
        let t0 = Instant::now();
        for key in 0..MAX_BUCKETS {
            buckets.take(key, 1.0, t0).unwrap();
        }
        // Two seconds later every bucket has refilled: the next new key drops them all.
        buckets
            .take(MAX_BUCKETS, 1.0, t0 + Duration::from_secs(2))
            .unwrap();
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn rate_math() {
        let rate = Rate::per_second(2, 10);
        assert_eq!(rate.refilled(3.0, Duration::from_secs(2)), 7.0);
        assert_eq!(
            rate.refilled(9.0, Duration::from_secs(2)),
            10.0,
            "capped at burst"
        );
        assert_eq!(rate.time_to(4.0, 5.0), Duration::from_millis(500));
        assert_eq!(rate.time_to(6.0, 5.0), Duration::ZERO);
    }
}
