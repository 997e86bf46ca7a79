//! Per-channel-identity rate governor: a token bucket shaped like the XMTP network's write
//! budget (3,000 burst, 600/min by default). Each message, commit and welcome costs a token.
//!
//! The bucket is soft state: losing it (restart, lease moving to another process) only means
//! the next sender may hit the node's own limit, which answers RESOURCE_EXHAUSTED and is
//! handled as a pause, never a failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ChannelId;

struct Bucket {
    tokens: f64,
    at: Instant,
    /// The node said "slow down": no sends before this.
    paused_until: Option<Instant>,
}

/// Token buckets per channel.
pub struct Governor {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Governor {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, channel: &ChannelId, f: impl FnOnce(&mut Bucket, Instant) -> R) -> R {
        let now = Instant::now();
        let mut map = self.buckets.lock().expect("governor lock poisoned");
        let b = map.entry(channel.as_str().to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            paused_until: None,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst);
        b.at = now;
        f(b, now)
    }

    /// Whole tokens available now, or how long until at least one is.
    pub fn available(&self, channel: &ChannelId) -> Result<usize, Duration> {
        let per_second = self.per_second;
        self.with(channel, |b, now| {
            if let Some(until) = b.paused_until.filter(|u| *u > now) {
                return Err(until - now);
            }
            if b.tokens >= 1.0 {
                Ok(b.tokens.floor() as usize)
            } else {
                Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
            }
        })
    }

    /// Spends `n` tokens (may go negative: the next sends wait for the refill).
    pub fn spend(&self, channel: &ChannelId, n: usize) {
        self.with(channel, |b, _| b.tokens -= n as f64);
    }

    /// The node refused a write: empty the bucket and pause for `wait`.
    pub fn penalize(&self, channel: &ChannelId, wait: Duration) {
        self.with(channel, |b, now| {
            b.tokens = b.tokens.min(0.0);
            b.paused_until = Some(now + wait);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_wait() {
        let g = Governor::new(5, 60);
        let ch = ChannelId::from_trusted("ch_1".into());
        assert_eq!(g.available(&ch), Ok(5));
        g.spend(&ch, 5);
        let wait = g.available(&ch).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        g.penalize(&ch, Duration::from_secs(30));
        assert!(g.available(&ch).unwrap_err() > Duration::from_secs(20));
    }
}
