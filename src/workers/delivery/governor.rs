//! The XMTP write budget of the whole deployment: one token bucket in the database
//! (`xmtp_budgets`), shared by every channel, worker and replica, shaped like the v3 node's
//! limit per client IP (3,000 writes in a burst, then 600 per minute; `rate_multiplier` for an
//! allowlisted IP). Each message, commit and welcome costs a token.
//!
//! Lanes: a share of the burst (`rate_reserve_percent`) is kept for channels whose next due
//! delivery is critical, so a large normal broadcast cannot starve an urgent one on another
//! channel. Sender candidates are already ordered critical first.
//!
//! Updates are compare-and-set on the row's version, so concurrent takers never spend the same
//! token twice. Losing a race only means reading again. The network's own limit stays the
//! backstop: a RESOURCE_EXHAUSTED answer pauses the bucket for everybody.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use token_bucket::Rate;

use crate::store::pipeline::BudgetRow;
use crate::store::{Store, StoreResult};

/// How many times a take retries a lost compare-and-set before reporting a short wait.
const CAS_TRIES: usize = 8;

/// The bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// The bucket's rate and burst (the workspace's one token-bucket math).
    pub rate: Rate,
    /// Tokens only critical takes may use.
    pub reserve: f64,
}

impl Shape {
    /// From the `[xmtp]` settings.
    pub fn new(burst: u32, per_minute: u32, multiplier: u32, reserve_percent: u32) -> Shape {
        let m = multiplier.max(1);
        let rate = Rate::per_minute(
            per_minute.max(1).saturating_mul(m),
            burst.max(1).saturating_mul(m),
        );
        Shape {
            rate,
            reserve: (rate.burst * f64::from(reserve_percent.min(90)) / 100.0).floor(),
        }
    }

    /// The row refilled up to `now` (a missing row is a full bucket).
    fn refill(&self, row: Option<&BudgetRow>, now: DateTime<Utc>) -> BudgetRow {
        match row {
            None => BudgetRow {
                tokens: self.rate.burst,
                refilled_at: now,
                paused_until: None,
                version: 0,
            },
            Some(r) => {
                let elapsed = (now - r.refilled_at).to_std().unwrap_or_default();
                BudgetRow {
                    tokens: self.rate.refilled(r.tokens, elapsed),
                    refilled_at: now.max(r.refilled_at),
                    paused_until: r.paused_until.filter(|p| *p > now),
                    version: r.version,
                }
            }
        }
    }
}

/// What a take decided: `Ok(tokens granted)` (at least 1), or how long to wait.
pub type Grant = Result<usize, Duration>;

/// Pure step of a take (unit-tested): grants up to `want` tokens above the lane's floor.
fn take_step(
    shape: &Shape,
    row: &mut BudgetRow,
    want: usize,
    critical: bool,
    now: DateTime<Utc>,
) -> Grant {
    if let Some(until) = row.paused_until {
        return Err((until - now).to_std().unwrap_or_default());
    }
    let floor = if critical { 0.0 } else { shape.reserve };
    let spare = (row.tokens - floor).floor();
    if spare >= 1.0 {
        let n = (spare as usize).min(want.max(1));
        row.tokens -= n as f64;
        Ok(n)
    } else {
        Err(shape.rate.time_to(row.tokens, floor + 1.0))
    }
}

/// The deployment's write budget on one network.
pub struct Governor {
    store: Arc<dyn Store>,
    key: String,
    shape: Shape,
}

impl Governor {
    /// The budget `key` (e.g. the network's URL) in `store`.
    pub fn new(store: Arc<dyn Store>, key: String, shape: Shape) -> Self {
        Self { store, key, shape }
    }

    /// Applies `step` to the refilled row; writes it under compare-and-set when the step
    /// says so. None: every try lost a race to another writer.
    async fn update<R>(
        &self,
        mut step: impl FnMut(&mut BudgetRow, DateTime<Utc>) -> Step<R>,
    ) -> StoreResult<Option<R>> {
        let pipeline = self.store.pipeline();
        for _ in 0..CAS_TRIES {
            let now = Utc::now();
            let stored = pipeline.budget_get(&self.key).await?;
            let mut row = self.shape.refill(stored.as_ref(), now);
            match step(&mut row, now) {
                Step::Answer(r) => return Ok(Some(r)),
                Step::Write(r) => {
                    row.version += 1;
                    if pipeline.budget_put(&self.key, &row).await? {
                        return Ok(Some(r));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Takes up to `want` tokens now for a channel whose next due delivery is `critical` or
    /// not; or says how long until some are free.
    pub async fn take(&self, want: usize, critical: bool) -> StoreResult<Grant> {
        let shape = self.shape;
        let grant = self
            .update(
                |row, now| match take_step(&shape, row, want, critical, now) {
                    Ok(n) => Step::Write(Ok(n)),
                    Err(wait) => Step::Answer(Err(wait)),
                },
            )
            .await?;
        Ok(grant.unwrap_or(Err(Duration::from_millis(50))))
    }

    /// Gives back `n` unused tokens (positive) or spends `-n` more (a batch cost more than it
    /// reserved, e.g. new DMs: the balance may go negative and later takes wait).
    pub async fn adjust(&self, n: i64) -> StoreResult<()> {
        if n == 0 {
            return Ok(());
        }
        let burst = self.shape.rate.burst;
        self.update(|row, _| {
            row.tokens = (row.tokens + n as f64).min(burst);
            Step::Write(())
        })
        .await
        .map(drop)
    }

    /// The network refused a write: empty the bucket and pause everybody for `wait`.
    pub async fn penalize(&self, wait: Duration) -> StoreResult<()> {
        let wait = chrono::Duration::from_std(wait).unwrap_or_default();
        self.update(|row, now| {
            row.tokens = row.tokens.min(0.0);
            row.paused_until = Some(row.paused_until.unwrap_or(now).max(now + wait));
            Step::Write(())
        })
        .await
        .map(drop)
    }
}

/// What a step of [`Governor::update`] wants done with the row.
enum Step<R> {
    /// Store the changed row, then answer.
    Write(R),
    /// Answer without writing.
    Answer(R),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tokens: f64) -> BudgetRow {
        BudgetRow {
            tokens,
            refilled_at: Utc::now(),
            paused_until: None,
            version: 1,
        }
    }

    #[test]
    fn normal_takes_leave_the_reserve_to_critical_ones() {
        let shape = Shape::new(100, 60, 1, 10);
        assert_eq!(shape.reserve, 10.0);
        let now = Utc::now();
        let mut r = row(100.0);
        assert_eq!(take_step(&shape, &mut r, 500, false, now), Ok(90));
        let wait = take_step(&shape, &mut r, 5, false, now).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(take_step(&shape, &mut r, 500, true, now), Ok(10));
        assert!(take_step(&shape, &mut r, 1, true, now).is_err());
    }

    #[test]
    fn refill_is_capped_and_pauses_hold() {
        let shape = Shape::new(100, 600, 1, 0);
        let then = Utc::now() - chrono::Duration::seconds(60);
        let stored = BudgetRow {
            tokens: -50.0,
            refilled_at: then,
            paused_until: Some(Utc::now() + chrono::Duration::seconds(30)),
            version: 3,
        };
        let now = Utc::now();
        let mut r = shape.refill(Some(&stored), now);
        assert_eq!(r.tokens, 100.0);
        assert_eq!(r.version, 3);
        let wait = take_step(&shape, &mut r, 1, true, now).unwrap_err();
        assert!(wait > Duration::from_secs(20), "{wait:?}");
    }

    #[test]
    fn the_multiplier_scales_the_allowlisted_budget() {
        let shape = Shape::new(3_000, 600, 4, 10);
        assert_eq!(shape.rate.burst, 12_000.0);
        assert_eq!(shape.rate.per_second, 40.0);
    }
}
