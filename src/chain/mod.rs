//! On-chain event triggers: EVM events become announcement texts.
//!
//! Reading order: [`config`] (per-chain settings), [`event`] (ABI parsing and decoding),
//! [`condition`] and [`template`] (what users write), [`trigger`] (validation and the compiled
//! form), [`store`] (the persistence contract the service implements on SQL), [`rpc`] (JSON-RPC
//! with failover and retries), [`watcher`] (the per-chain follower loop) and [`metrics`].

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
pub mod watcher;

pub use config::ChainConfig;
pub use store::{ChainStore, MemoryChainStore};
pub use trigger::{CompiledTrigger, FieldError, TriggerSpec, ValidationErrors};
pub use watcher::{Outcome, Watcher, WatcherError};
