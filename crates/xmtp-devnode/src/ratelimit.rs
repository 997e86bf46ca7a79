//! Optional write rate limit, shaped like the public XMTP network's: per client a burst of
//! 3,000 writes, refilled at 600 per minute. herald's pipeline uses it to test its pacing.
//!
//! A client is whatever it says in the `x-herald-client` metadata header, or else its peer
//! socket address (one gRPC connection). Every message in a write costs one token (a batch of
//! 100 group messages costs 100), because the public network budgets messages, not calls; a
//! batch larger than the tokens available is refused whole with RESOURCE_EXHAUSTED.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use token_bucket::{KeyedBuckets, Rate};
use tonic::{Request, Status};

/// Metadata key a client may set to be identified across connections.
pub const CLIENT_HEADER: &str = "x-herald-client";

/// Token-bucket parameters.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub burst: u32,
    pub per_minute: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 3_000,
            per_minute: 600,
        }
    }
}

/// Per-client token buckets.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: KeyedBuckets<String>,
    refused: AtomicU64,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: KeyedBuckets::new(Rate::per_minute(limit.per_minute, limit.burst)),
            refused: AtomicU64::new(0),
        }
    }

    /// Writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes `cost` tokens for the caller of `request`, or answers RESOURCE_EXHAUSTED.
    pub fn check<T>(&self, request: &Request<T>, cost: u32) -> Result<(), Status> {
        let key = request
            .metadata()
            .get(CLIENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.remote_addr().map(|a| a.to_string()))
            .unwrap_or_default();
        self.take(&key, f64::from(cost.max(1)), Instant::now())
    }

    fn take(&self, key: &str, cost: f64, now: Instant) -> Result<(), Status> {
        self.buckets
            .take(key.to_owned(), cost, now)
            .map_err(|wait| {
                Status::resource_exhausted(format!(
                    "rate limit exceeded ({} burst, {}/min); retry in {} ms",
                    self.limit.burst,
                    self.limit.per_minute,
                    wait.as_millis()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(RateLimit {
            burst: 3,
            per_minute: 60,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            rl.take("a", 1.0, t0).unwrap();
        }
        let err = rl.take("a", 1.0, t0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        rl.take("b", 1.0, t0)
            .expect("clients have separate buckets");
        rl.take("a", 1.0, t0 + Duration::from_millis(1_100))
            .expect("one token per second refills");
        assert!(rl
            .take("a", 1.0, t0 + Duration::from_millis(1_200))
            .is_err());
    }

    #[test]
    fn a_batch_costs_one_token_per_message() {
        let rl = RateLimiter::new(RateLimit {
            burst: 10,
            per_minute: 60,
        });
        let t0 = Instant::now();
        rl.take("a", 6.0, t0).unwrap();
        let err = rl.take("a", 6.0, t0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        rl.take("a", 4.0, t0)
            .expect("the refused batch took nothing");
    }
}
