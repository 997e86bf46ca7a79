//! One chain watcher per configured chain, under a database lease so that among many replicas
//! sharing Postgres exactly one watches each chain.
//!
//! The loop: try to take the chain's lease; while held, run the engine's
//! [`Watcher`] with a [`ChainStore`](crate::chain::ChainStore) fenced by
//! that lease, and renew the lease every `renew_every`. When renewal reports the lease gone
//! (another replica took it over after it expired) the watcher is stopped; until then the
//! fencing inside every commit already refuses its batches, so a paused or partitioned process
//! can never write over its successor. On shutdown the watcher is cancelled and the lease
//! released, so another replica takes over without waiting for expiry. The chain's watch
//! evaluator (`watch_evaluator`) runs beside the watcher under the same lease.

use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;
use tokio_util::sync::CancellationToken;

use super::chain_quota::QuotaGate;
use super::watch_evaluator;
use crate::chain::{ChainConfig, Watcher};
use crate::store::{ChainLease, Store};

/// 1 while this process holds the chain's lease and runs its watcher, else 0.
pub const LEASE_HELD: &str = "herald_chain_lease_held";
/// 1 once a chain's watcher stopped on a fatal error (a reorg deeper than its window).
pub const WATCHER_FAILED: &str = "herald_chain_watcher_failed";

/// Lease timing.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a lease lasts without renewal; a crashed holder is replaced after this.
    pub ttl: Duration,
    /// Renewal period while holding; well under `ttl` so one slow renewal does not lose it.
    pub renew_every: Duration,
    /// How often a replica without the lease tries to take it.
    pub retry_every: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            retry_every: Duration::from_secs(5),
        }
    }
}

/// How a period of holding the lease ended.
enum Held {
    /// Shutdown requested; the lease was released.
    Shutdown,
    /// Another holder took over (or renewal kept failing past the TTL).
    Lost,
    /// The watcher stopped on a fatal error; this replica stops watching the chain.
    Fatal,
}

/// Watches `chain` whenever this process holds its lease, until `shutdown`. Announcements of
/// a tenant with `max_pending_deliveries` recipients pending wait (0: no quota).
pub async fn run(
    store: Arc<dyn Store>,
    chain: ChainConfig,
    settings: LeaseSettings,
    max_pending_deliveries: u64,
    shutdown: CancellationToken,
) {
    // Unique per process start: a restarted process must not pass for its previous self.
    let holder = format!("watch_{}", ulid::Ulid::new());
    let label = chain.chain_id.to_string();
    gauge!(LEASE_HELD, "chain" => label.clone()).set(0.0);
    loop {
        match store
            .triggers()
            .acquire_chain_lease(chain.chain_id, &holder, settings.ttl)
            .await
        {
            Ok(Some(lease)) => {
                tracing::info!(
                    chain.id = chain.chain_id,
                    lease.epoch = lease.epoch,
                    "chain lease acquired; watching"
                );
                gauge!(LEASE_HELD, "chain" => label.clone()).set(1.0);
                let held = hold(
                    store.clone(),
                    &chain,
                    lease,
                    settings,
                    max_pending_deliveries,
                    &shutdown,
                )
                .await;
                gauge!(LEASE_HELD, "chain" => label.clone()).set(0.0);
                match held {
                    Held::Shutdown => return,
                    Held::Fatal => {
                        gauge!(WATCHER_FAILED, "chain" => label.clone()).set(1.0);
                        return;
                    }
                    Held::Lost => {
                        tracing::warn!(
                            chain.id = chain.chain_id,
                            "chain lease lost; watcher stopped"
                        )
                    }
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(chain.id = chain.chain_id, error = %err, "taking the chain lease failed")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.retry_every) => {}
        }
    }
}

/// Runs the watcher while renewing `lease`.
async fn hold(
    store: Arc<dyn Store>,
    chain: &ChainConfig,
    lease: ChainLease,
    settings: LeaseSettings,
    max_pending_deliveries: u64,
    shutdown: &CancellationToken,
) -> Held {
    let engine = QuotaGate::wrap(
        store.triggers().chain_store(Some(lease.clone())),
        store.clone(),
        max_pending_deliveries,
    );
    let watcher = match Watcher::new(chain.clone(), engine) {
        Ok(w) => w,
        Err(err) => {
            tracing::error!(chain.id = chain.chain_id, error = %err, "cannot start the chain watcher");
            release(store.as_ref(), &lease).await;
            return Held::Fatal;
        }
    };
    let stop = shutdown.child_token();
    let mut task = tokio::spawn(watcher.run(stop.clone()));
    // The chain's watches are evaluated under the same lease, stopped with the watcher.
    let evaluator = tokio::spawn(watch_evaluator::run(
        store.clone(),
        chain.clone(),
        lease.clone(),
        stop.clone(),
    ));
    let stop_evaluator = |stop: CancellationToken| async move {
        stop.cancel();
        let _ = evaluator.await;
    };
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            ended = &mut task => {
                stop_evaluator(stop).await;
                release(store.as_ref(), &lease).await;
                return match ended {
                    Ok(Ok(())) => Held::Shutdown,
                    // `run` logged the fatal error; a panic is logged by the runtime.
                    Ok(Err(_)) | Err(_) => Held::Fatal,
                };
            }
            () = shutdown.cancelled() => {
                stop.cancel();
                let _ = task.await;
                stop_evaluator(stop).await;
                release(store.as_ref(), &lease).await;
                return Held::Shutdown;
            }
            () = tokio::time::sleep(settings.renew_every) => {
                match store.triggers().renew_chain_lease(&lease, settings.ttl).await {
                    Ok(true) => renewed_at = tokio::time::Instant::now(),
                    Ok(false) => {
                        stop.cancel();
                        let _ = task.await;
                        stop_evaluator(stop).await;
                        return Held::Lost;
                    }
                    Err(err) => {
                        tracing::warn!(chain.id = chain.chain_id, error = %err, "renewing the chain lease failed");
                        // Past the TTL someone else may hold it: stop rather than spin on
                        // refused commits (fencing keeps them harmless either way).
                        if renewed_at.elapsed() >= settings.ttl {
                            stop.cancel();
                            let _ = task.await;
                            stop_evaluator(stop).await;
                            return Held::Lost;
                        }
                    }
                }
            }
        }
    }
}

async fn release(store: &dyn Store, lease: &ChainLease) {
    if let Err(err) = store.triggers().release_chain_lease(lease).await {
        tracing::warn!(chain.id = lease.chain_id, error = %err, "releasing the chain lease failed; it expires on its own");
    }
}
