//! The watch evaluator: one per chain, run by `chain_watcher` beside the chain's `Watcher`
//! while this process holds the chain's lease, and stopped with it.
//!
//! Each step reads the head and the chain's active watches; a watch is due when `every_blocks`
//! have passed since its last evaluated block. A due watch is evaluated at one pinned block
//! (the head read at the start of the step) for every subscriber of its channel (those
//! receiving its topic, if it has one), in pages of `watch_batch_size`: one `aggregate3`
//! `eth_call` per page, each subscriber's result decoded, its condition and rearm condition
//! evaluated, and the re-arm rule (`chain::watch::rule`) applied to its stored state. Only the
//! subscribers whose state changed are written, together with their alerts (one announcement
//! each, addressed to that subscriber only), in one transaction per page fenced by the lease;
//! the last page also records the round's block.
//!
//! Restart-safe: the state is in the database, so a crash mid-round re-evaluates the round
//! from the start and the subscribers already alerted stay disarmed (no second alert).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use metrics::{counter, gauge};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::chain::rpc::{ChainRpc, RetryPolicy, RpcError};
use crate::chain::watch::rule::{self, Step};
use crate::chain::watch::{multicall, CompiledWatch};
use crate::chain::ChainConfig;
use crate::store::{
    ChainLease, PageCommit, Store, StoreError, WatchChange, WatchRecord, WatchTarget,
};

/// Subscriber evaluations (one per subscriber per round), by chain.
pub const EVALUATIONS: &str = "herald_watch_evaluations_total";
/// Alerts created (announcements to one subscriber), by chain.
pub const ALERTS: &str = "herald_watch_alerts_total";
/// Per-subscriber calls that reverted or did not decode as the declared outputs, by chain.
pub const CALL_FAILURES: &str = "herald_watch_call_failures_total";
/// Blocks between the head and the oldest evaluated block among the chain's active watches.
pub const LAG_BLOCKS: &str = "herald_watch_lag_blocks";
/// The oldest evaluated block among the chain's active watches (progress).
pub const EVALUATED_BLOCK: &str = "herald_watch_evaluated_block";
/// Rounds (a watch evaluated for all its subscribers at one block) completed, by chain.
pub const ROUNDS: &str = "herald_watch_rounds_total";

/// Why a step failed. Every variant is retried by the loop after a pause.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The node could not answer (`RpcError::is_retryable` tells the class).
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError),
    /// The database could not serve.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The aggregator's answer does not decode as `aggregate3` results, or has the wrong count
    /// (not a Multicall3 at `multicall_address`?).
    #[error("multicall answer: {0}")]
    Multicall(String),
    /// The lease is no longer held at our epoch: this evaluator must stop.
    #[error("chain lease lost")]
    LeaseLost,
}

impl EvalError {
    /// Whether the loop should try again later (everything but a lost lease).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, EvalError::LeaseLost)
    }
}

/// The evaluator of one chain, holding compiled watches between steps.
pub struct Evaluator {
    store: Arc<dyn Store>,
    chain: ChainConfig,
    rpc: ChainRpc,
    lease: ChainLease,
    multicall: Address,
    compiled: HashMap<String, (u64, Option<Arc<CompiledWatch>>)>,
}

impl Evaluator {
    pub fn new(
        store: Arc<dyn Store>,
        chain: ChainConfig,
        lease: ChainLease,
    ) -> Result<Self, RpcError> {
        let rpc = ChainRpc::new(&chain, RetryPolicy::default())?;
        let multicall = chain.multicall().unwrap_or(multicall::CANONICAL_ADDRESS);
        Ok(Self {
            store,
            chain,
            rpc,
            lease,
            multicall,
            compiled: HashMap::new(),
        })
    }

    /// Evaluates every due watch at the current head; `Worked(n)` counts subscriber
    /// evaluations.
    pub async fn run_once(&mut self) -> Result<Outcome, EvalError> {
        let head = self.rpc.block_number().await?;
        let watches = self.store.active_watches(self.chain.chain_id).await?;
        let label = self.chain.chain_id.to_string();
        // A watch not evaluated yet has no lag to show (its first round is due now).
        let oldest = watches.iter().filter_map(|w| w.evaluated_block).min();
        gauge!(LAG_BLOCKS, "chain" => label.clone())
            .set(oldest.map_or(0, |b| head.saturating_sub(b)) as f64);
        if let Some(oldest) = oldest {
            gauge!(EVALUATED_BLOCK, "chain" => label.clone()).set(oldest as f64);
        }
        let mut evaluated = 0;
        for watch in &watches {
            let Some(compiled) = self.compiled(watch) else {
                continue;
            };
            let due = watch
                .evaluated_block
                .is_none_or(|b| head >= b.saturating_add(compiled.every_blocks));
            if due {
                evaluated += self.round(watch, &compiled, head).await?;
                counter!(ROUNDS, "chain" => label.clone()).increment(1);
            }
        }
        Ok(if evaluated == 0 {
            Outcome::Idle
        } else {
            Outcome::Worked(evaluated)
        })
    }

    /// The compiled form of `watch` at its revision; `None` (logged once per revision) if it no
    /// longer validates against this chain's settings.
    fn compiled(&mut self, watch: &WatchRecord) -> Option<Arc<CompiledWatch>> {
        let key = watch.id.as_str();
        if let Some((revision, compiled)) = self.compiled.get(key) {
            if *revision == watch.revision {
                return compiled.clone();
            }
        }
        let compiled = match watch.spec.validate(std::slice::from_ref(&self.chain)) {
            Ok(c) => Some(Arc::new(c)),
            Err(errors) => {
                tracing::warn!(watch.id = %watch.id, error = %errors, "watch no longer validates; skipped");
                None
            }
        };
        self.compiled
            .insert(key.to_owned(), (watch.revision, compiled.clone()));
        compiled
    }

    /// One round: every subscriber of `watch` at `block`, page by page. Returns how many
    /// subscribers were evaluated.
    async fn round(
        &self,
        watch: &WatchRecord,
        compiled: &Arc<CompiledWatch>,
        block: u64,
    ) -> Result<u64, EvalError> {
        let batch = self.chain.watch_batch_size.max(1);
        let label = self.chain.chain_id.to_string();
        let mut after = String::new();
        let mut evaluated = 0u64;
        loop {
            let targets = self
                .store
                .watch_targets(watch, &after, batch as u32)
                .await?;
            let done = targets.len() < batch;
            let changes = self.evaluate(compiled, &targets, block).await?;
            evaluated += targets.len() as u64;
            counter!(EVALUATIONS, "chain" => label.clone()).increment(targets.len() as u64);
            match self
                .store
                .commit_watch_page(&self.lease, watch, block, &changes, done)
                .await?
            {
                PageCommit::Done { alerts } => {
                    counter!(ALERTS, "chain" => label.clone()).increment(alerts);
                    if alerts > 0 {
                        tracing::info!(watch.id = %watch.id, chain.block = block, alerts, "watch alerts created");
                    }
                }
                // Paused, edited or deleted meanwhile: the next step sees the new state.
                PageCommit::Stale => return Ok(evaluated),
                PageCommit::LeaseLost => return Err(EvalError::LeaseLost),
            }
            match targets.last() {
                Some(last) if !done => after = last.address.clone(),
                _ => return Ok(evaluated),
            }
        }
    }

    /// Calls the view function for `targets` in one `aggregate3` at `block` and applies the
    /// re-arm rule; returns the changed states (with alert texts).
    async fn evaluate(
        &self,
        compiled: &Arc<CompiledWatch>,
        targets: &[WatchTarget],
        block: u64,
    ) -> Result<Vec<WatchChange>, EvalError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let addresses: Vec<Address> = targets
            .iter()
            .map(|t| t.address.parse().unwrap_or(Address::ZERO))
            .collect();
        let data = multicall::encode(
            addresses
                .iter()
                .map(|a| (compiled.contract, compiled.calldata(*a))),
        );
        let answer = self
            .rpc
            .call_at(self.multicall, Bytes::from(data), block)
            .await?;
        let results =
            multicall::decode(&answer).map_err(|e| EvalError::Multicall(e.to_string()))?;
        if results.len() != targets.len() {
            return Err(EvalError::Multicall(format!(
                "{} results for {} calls",
                results.len(),
                targets.len()
            )));
        }
        // Decoding, the conditions and alert rendering are CPU work: off the async runtime
        // (templates come from API users; their render is bounded but not free).
        let (compiled, chain) = (compiled.clone(), self.chain.clone());
        let targets = targets.to_vec();
        let (changes, failures) = tokio::task::spawn_blocking(move || {
            decide(&compiled, &chain, &targets, &addresses, results, block)
        })
        .await
        .map_err(|e| EvalError::Multicall(format!("evaluation task failed: {e}")))?;
        if failures > 0 {
            counter!(CALL_FAILURES, "chain" => self.chain.chain_id.to_string()).increment(failures);
        }
        Ok(changes)
    }
}

/// Applies the re-arm rule to each target's call result; returns the changed states (alerts
/// rendered) and how many calls failed or did not decode.
fn decide(
    compiled: &CompiledWatch,
    chain: &ChainConfig,
    targets: &[WatchTarget],
    addresses: &[Address],
    results: Vec<Option<Bytes>>,
    block: u64,
) -> (Vec<WatchChange>, u64) {
    let mut failures = 0u64;
    let mut changes = Vec::new();
    for ((target, address), result) in targets.iter().zip(addresses).zip(results) {
        let outputs = match result.map(|data| compiled.decode(&data)) {
            Some(Ok(outputs)) => outputs,
            _ => {
                failures += 1;
                continue;
            }
        };
        let condition = compiled.condition.eval(&outputs);
        let rearm = match &compiled.rearm {
            Some(r) => r.eval(&outputs),
            None => !condition,
        };
        let state = target.state.unwrap_or_default();
        let (next, step) = rule::step(state, condition, rearm, block, compiled.cooldown_blocks);
        if step == Step::Stay {
            continue;
        }
        let alert = match step {
            Step::Alert => match compiled.render(&outputs, *address, block, chain) {
                Ok(text) => Some(text),
                Err(err) => {
                    // The state still moves, so a template failing on this value does not
                    // retry (and fail) on every block.
                    tracing::warn!(subscriber = %target.address, error = %err, "watch alert did not render");
                    None
                }
            },
            _ => None,
        };
        changes.push(WatchChange {
            address: target.address.clone(),
            state: next,
            value: Some(outputs_json(compiled, &outputs)),
            alert,
        });
    }
    (changes, failures)
}

/// The decoded outputs as a JSON object of strings, kept as the subscriber's last value.
fn outputs_json(compiled: &CompiledWatch, outputs: &[alloy::dyn_abi::DynSolValue]) -> String {
    use alloy::dyn_abi::DynSolValue;
    let map: serde_json::Map<String, serde_json::Value> = compiled
        .output_names()
        .iter()
        .zip(outputs)
        .map(|(name, value)| {
            let text = match value {
                DynSolValue::Uint(v, _) => v.to_string(),
                DynSolValue::Int(v, _) => v.to_string(),
                DynSolValue::Address(a) => a.to_checksum(None),
                DynSolValue::Bool(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            (name.clone(), serde_json::Value::String(text))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Pause after a failed step.
const ERROR_PAUSE: Duration = Duration::from_secs(2);

/// Runs the chain's evaluator until `stop` fires or the lease is lost.
pub async fn run(
    store: Arc<dyn Store>,
    chain: ChainConfig,
    lease: ChainLease,
    stop: CancellationToken,
) {
    let idle = Duration::from_millis(chain.poll_interval_ms.max(1));
    let chain_id = chain.chain_id;
    let mut evaluator = match Evaluator::new(store, chain, lease) {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(chain.id = chain_id, error = %err, "cannot start the watch evaluator");
            return;
        }
    };
    loop {
        let pause = match evaluator.run_once().await {
            Ok(Outcome::Worked(_)) => Duration::ZERO,
            Ok(Outcome::Idle) => idle,
            Err(err) if err.is_retryable() => {
                tracing::warn!(chain.id = chain_id, error = %err, "watch evaluation failed; retrying");
                ERROR_PAUSE
            }
            Err(err) => {
                tracing::warn!(chain.id = chain_id, error = %err, "watch evaluator stopped");
                return;
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
