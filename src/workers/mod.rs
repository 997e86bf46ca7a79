//! Background workers. Each is a loop around a testable `run_once` step that reports whether
//! it found work, sleeps according to that outcome, and exits when the shutdown token fires.
//!
//! The delivery pipeline and chain watchers join here later; `spawn_all` is the one place
//! `app` calls to start them.

pub mod chain_quota;
pub mod chain_watcher;
pub mod delivery;
pub mod idempotency_sweeper;
pub mod inbound_watch;
pub mod wake;
pub mod wal_checkpointer;
pub mod watch_evaluator;
pub mod webhooks;

pub use wake::Wake;

use crate::app::App;

/// What one step of a worker accomplished; decides how soon the loop runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Did this many units of work; run again promptly in case more is waiting.
    Worked(u64),
    /// Nothing to do; wait for the idle interval.
    Idle,
}

/// Starts every background worker on `app`'s shared cancellation token.
pub fn spawn_all(app: &App) {
    app.spawn_worker(|state, shutdown| idempotency_sweeper::run(state.store, shutdown));
    app.spawn_worker(|state, shutdown| {
        let dispatcher = webhooks::Dispatcher::new(state.store, state.kek, state.webhooks);
        webhooks::run(dispatcher, shutdown)
    });
    for chain in app.chains() {
        app.spawn_worker(move |state, shutdown| {
            chain_watcher::run(
                state.store,
                chain,
                chain_watcher::LeaseSettings::default(),
                state.quotas.max_pending_deliveries,
                shutdown,
            )
        });
    }
}
