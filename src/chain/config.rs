//! Per-chain configuration (`[[chains]]` in the service config).
//!
//! These are plain serde structs so the service's config loader can embed them as
//! `chains: Vec<ChainConfig>`; every field except `chain_id`, `name` and `rpc_urls` has a default.

use alloy::transports::http::reqwest::Url;
use serde::{Deserialize, Serialize};

/// One EVM chain the service watches.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// EIP-155 chain id (1 = Ethereum mainnet).
    pub chain_id: u64,
    /// Display name, available to templates as `chain.name`.
    pub name: String,
    /// HTTP JSON-RPC endpoints, tried in order; the watcher fails over to the next on errors.
    /// They may embed API keys, so `Debug` redacts them.
    pub rpc_urls: Vec<String>,
    /// Optional WebSocket endpoint: its new-heads subscription only wakes the watcher early;
    /// polling over HTTP stays the source of truth.
    #[serde(default)]
    pub ws_url: Option<String>,
    /// Default confirmation depth for triggers that do not set their own.
    #[serde(default = "defaults::confirmations")]
    pub confirmations: u64,
    /// How often the watcher polls for a new head, in milliseconds.
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Largest block span of one `eth_getLogs` call; halved on provider errors.
    #[serde(default = "defaults::max_block_range")]
    pub max_block_range: u64,
    /// Client-side cap on RPC requests per second (0 = unlimited).
    #[serde(default = "defaults::requests_per_second")]
    pub requests_per_second: u32,
    /// Block explorer base URL for the `explorer_tx` / `explorer_address` template filters.
    #[serde(default)]
    pub explorer_url: Option<String>,
    /// How many recent block hashes are kept for reorg detection; also the deepest allowed
    /// confirmation count (a reorg deeper than this stops the chain's watcher).
    #[serde(default = "defaults::reorg_window")]
    pub reorg_window: u64,
    /// Deepest history (in blocks below the cursor) scanned for a trigger created with an old
    /// `from_block`; older blocks are skipped with a warning.
    #[serde(default = "defaults::max_backfill_blocks")]
    pub max_backfill_blocks: u64,
    /// Per-request timeout in milliseconds.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Address of a Multicall3-compatible contract (`aggregate3`) that watches batch their
    /// per-subscriber calls through; the canonical Multicall3 deployment by default.
    #[serde(default = "defaults::multicall_address")]
    pub multicall_address: String,
    /// Subscribers per `aggregate3` call when evaluating a watch.
    #[serde(default = "defaults::watch_batch_size")]
    pub watch_batch_size: usize,
}

mod defaults {
    pub fn confirmations() -> u64 {
        12
    }
    pub fn poll_interval_ms() -> u64 {
        2_000
    }
    pub fn max_block_range() -> u64 {
        2_000
    }
    pub fn requests_per_second() -> u32 {
        25
    }
    pub fn reorg_window() -> u64 {
        128
    }
    pub fn max_backfill_blocks() -> u64 {
        10_000
    }
    pub fn request_timeout_ms() -> u64 {
        15_000
    }
    pub fn multicall_address() -> String {
        crate::chain::watch::multicall::CANONICAL_ADDRESS.to_checksum(None)
    }
    pub fn watch_batch_size() -> usize {
        500
    }
}

/// A configuration mistake, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum ChainConfigError {
    /// `rpc_urls` is empty.
    #[error("chain {0}: rpc_urls must list at least one URL")]
    NoRpcUrls(u64),
    /// An RPC URL does not parse or is not http(s).
    #[error("chain {chain_id}: rpc_urls[{index}] is not an http(s) URL")]
    BadRpcUrl { chain_id: u64, index: usize },
    /// A numeric field is out of range.
    #[error("chain {chain_id}: {field} {detail}")]
    OutOfRange {
        chain_id: u64,
        field: &'static str,
        detail: &'static str,
    },
    /// The same chain id is configured twice.
    #[error("chain {0} is configured more than once")]
    Duplicate(u64),
}

impl ChainConfig {
    /// A config with defaults for everything optional; handy for tests and examples.
    pub fn new(chain_id: u64, name: impl Into<String>, rpc_urls: Vec<String>) -> Self {
        Self {
            chain_id,
            name: name.into(),
            rpc_urls,
            ws_url: None,
            confirmations: defaults::confirmations(),
            poll_interval_ms: defaults::poll_interval_ms(),
            max_block_range: defaults::max_block_range(),
            requests_per_second: defaults::requests_per_second(),
            explorer_url: None,
            reorg_window: defaults::reorg_window(),
            max_backfill_blocks: defaults::max_backfill_blocks(),
            request_timeout_ms: defaults::request_timeout_ms(),
            multicall_address: defaults::multicall_address(),
            watch_batch_size: defaults::watch_batch_size(),
        }
    }

    /// Checks one chain's settings.
    pub fn validate(&self) -> Result<(), ChainConfigError> {
        let id = self.chain_id;
        if self.rpc_urls.is_empty() {
            return Err(ChainConfigError::NoRpcUrls(id));
        }
        for (index, url) in self.rpc_urls.iter().enumerate() {
            let ok = url
                .parse::<Url>()
                .map(|u| matches!(u.scheme(), "http" | "https"))
                .unwrap_or(false);
            if !ok {
                return Err(ChainConfigError::BadRpcUrl {
                    chain_id: id,
                    index,
                });
            }
        }
        let range = |field, detail| ChainConfigError::OutOfRange {
            chain_id: id,
            field,
            detail,
        };
        if self.max_block_range == 0 {
            return Err(range("max_block_range", "must be at least 1"));
        }
        if self.poll_interval_ms == 0 {
            return Err(range("poll_interval_ms", "must be at least 1"));
        }
        if self.reorg_window < 2 || self.reorg_window > 10_000 {
            return Err(range("reorg_window", "must be between 2 and 10000"));
        }
        if self.confirmations > self.reorg_window {
            return Err(range("confirmations", "must not exceed reorg_window"));
        }
        if self.multicall().is_none() {
            return Err(range("multicall_address", "is not a 20-byte hex address"));
        }
        if !(1..=5_000).contains(&self.watch_batch_size) {
            return Err(range("watch_batch_size", "must be between 1 and 5000"));
        }
        Ok(())
    }

    /// The Multicall3-compatible aggregator watches call (`None` if the setting is invalid,
    /// which [`ChainConfig::validate`] refuses at startup).
    pub fn multicall(&self) -> Option<alloy::primitives::Address> {
        self.multicall_address.trim().parse().ok()
    }

    /// Validates a whole `[[chains]]` list, including duplicate ids.
    pub fn validate_all(chains: &[ChainConfig]) -> Result<(), ChainConfigError> {
        for (i, chain) in chains.iter().enumerate() {
            chain.validate()?;
            if chains[..i].iter().any(|c| c.chain_id == chain.chain_id) {
                return Err(ChainConfigError::Duplicate(chain.chain_id));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // RPC URLs routinely carry provider API keys in the path or query: show only the host.
        let hosts: Vec<String> = self.rpc_urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("ChainConfig")
            .field("chain_id", &self.chain_id)
            .field("name", &self.name)
            .field("rpc_urls", &hosts)
            .field("ws_url", &self.ws_url.as_deref().map(redact_url))
            .field("confirmations", &self.confirmations)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("max_block_range", &self.max_block_range)
            .field("requests_per_second", &self.requests_per_second)
            .field("explorer_url", &self.explorer_url)
            .field("reorg_window", &self.reorg_window)
            .field("max_backfill_blocks", &self.max_backfill_blocks)
            .field("multicall_address", &self.multicall_address)
            .field("watch_batch_size", &self.watch_batch_size)
            .finish()
    }
}

/// Keeps scheme, host and port of a URL and hides the rest (path, query, credentials).
pub fn redact_url(url: &str) -> String {
    match url.parse::<Url>() {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}/<redacted>",
                u.scheme(),
                u.host_str().unwrap_or("?")
            )
        }
        Err(_) => "<redacted>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_like_json_uses_defaults_and_debug_redacts() {
        let c: ChainConfig = serde_json::from_value(serde_json::json!({
            "chain_id": 1, "name": "mainnet", "rpc_urls": ["https://eth.example/v2/SECRETKEY"]
        }))
        .unwrap();
        assert_eq!(c.confirmations, 12);
        c.validate().unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SECRETKEY"), "{dbg}");
        assert!(dbg.contains("eth.example"));
    }

    #[test]
    fn rejects_bad_settings() {
        let mut c = ChainConfig::new(1, "x", vec![]);
        assert!(c.validate().is_err());
        c.rpc_urls = vec!["ftp://x".into()];
        assert!(c.validate().is_err());
        c.rpc_urls = vec!["http://127.0.0.1:1".into()];
        c.validate().unwrap();
        assert_eq!(
            c.multicall(),
            Some(crate::chain::watch::multicall::CANONICAL_ADDRESS)
        );
        c.multicall_address = "0x12".into();
        assert!(c.validate().is_err());
        c.multicall_address = "0x5FbDB2315678afecb367f032d93F642f64180aa3".into();
        c.watch_batch_size = 0;
        assert!(c.validate().is_err());
        c.watch_batch_size = 500;
        assert!(ChainConfig::validate_all(&[c.clone(), c]).is_err());
    }
}
