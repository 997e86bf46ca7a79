//! On-chain event triggers: EVM events become announcement texts.
//!
//! Reading order: [`config`] (per-chain settings), [`event`] (ABI parsing and decoding),
//! [`condition`] and [`template`] (what users write), [`trigger`] (validation and the compiled
//! form), [`matcher`] (the merged filter and per-log matching), [`store`] (the persistence
//! contract the service implements on SQL), [`rpc`] (JSON-RPC with failover, retries and rate
//! limit), [`watcher`] (the per-chain follower loop) and [`metrics`].
//!
//! Wiring in the service:
//! - config: `chains: Vec<ChainConfig>` under `[[chains]]` (`crate::config::Config::chains`),
//!   checked with [`ChainConfig::validate_all`] when the app starts;
//! - API: `crate::http::triggers` deserializes a [`TriggerSpec`], calls
//!   [`TriggerSpec::validate`] (each [`FieldError`] becomes an entry of the 422's `errors`), and
//!   stores it through `crate::store::TriggerStore`, starting after the chain's cursor;
//! - store: `crate::store::{postgres,sqlite}::chain_batch` implement [`ChainStore`] on SQL,
//!   fenced by the chain's watcher lease;
//! - workers: `crate::workers::chain_watcher` runs one [`Watcher`] per configured chain while
//!   holding its lease; [`Watcher::run`] returns only on cancellation or a fatal error
//!   ([`WatcherError::is_fatal`]: a reorg deeper than `reorg_window`), which is logged and
//!   exported as `herald_chain_watcher_failed`.
//!
//! Guarantees (tested against anvil in `tests/chain`): nothing is announced before its
//! trigger's confirmations; a reorg drops unconfirmed matches and retracts announced ones (a
//! log the new chain includes again is announced anew); a log is announced at most once per
//! trigger while it stays in the canonical chain, keyed by (trigger, chain, tx hash, position
//! in the tx); a restart resumes from the committed cursor with no gap and no duplicate.

pub mod condition;
pub mod config;
pub mod event;
pub mod matcher;
pub mod metrics;
pub mod rpc;
pub mod store;
pub mod template;
pub mod trigger;
mod wake;
pub mod watch;
pub mod watcher;

pub use config::ChainConfig;
pub use store::ChainStore;
#[cfg(any(test, feature = "test-util"))]
pub use store::MemoryChainStore;
pub use trigger::{CompiledTrigger, FieldError, TriggerSpec, ValidationErrors};
pub use watcher::{Outcome, Watcher, WatcherError};
