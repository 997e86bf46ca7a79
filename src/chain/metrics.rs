//! Chain watcher metrics, through the `metrics` facade (the service installs the Prometheus
//! recorder). Every series carries a `chain` label with the chain id.

use metrics::{counter, gauge};

/// Latest block number reported by the RPC endpoint.
pub const HEAD: &str = "herald_chain_head_block";
/// Latest block considered safe (head minus the smallest confirmation depth in use).
pub const SAFE_HEAD: &str = "herald_chain_safe_head_block";
/// Last block fully processed and committed.
pub const CURSOR: &str = "herald_chain_cursor_block";
/// Blocks between the safe head and the cursor: how far behind the watcher is.
pub const CURSOR_LAG: &str = "herald_chain_cursor_lag_blocks";
/// Logs that matched a trigger (after its condition).
pub const LOGS_MATCHED: &str = "herald_chain_logs_matched_total";
/// Logs fetched by `eth_getLogs`.
pub const LOGS_FETCHED: &str = "herald_chain_logs_fetched_total";
/// RPC failures by kind (`transport`, `rate_limited`, `range_too_large`, `rpc_error`, `timeout`).
pub const RPC_ERRORS: &str = "herald_chain_rpc_errors_total";
/// Reorgs detected (and rolled back).
pub const REORGS: &str = "herald_chain_reorgs_total";
/// Announcements created from chain events.
pub const ANNOUNCED: &str = "herald_chain_announced_total";

pub(crate) fn set_heads(chain_id: u64, head: u64, safe: u64) {
    let chain = chain_id.to_string();
    gauge!(HEAD, "chain" => chain.clone()).set(head as f64);
    gauge!(SAFE_HEAD, "chain" => chain).set(safe as f64);
}

pub(crate) fn set_cursor(chain_id: u64, cursor: u64, safe: u64) {
    let chain = chain_id.to_string();
    gauge!(CURSOR, "chain" => chain.clone()).set(cursor as f64);
    gauge!(CURSOR_LAG, "chain" => chain).set(safe.saturating_sub(cursor) as f64);
}

pub(crate) fn rpc_error(chain_id: u64, kind: &'static str) {
    counter!(RPC_ERRORS, "chain" => chain_id.to_string(), "kind" => kind).increment(1);
}

pub(crate) fn logs(chain_id: u64, fetched: usize, matched: usize, announced: usize) {
    let chain = chain_id.to_string();
    counter!(LOGS_FETCHED, "chain" => chain.clone()).increment(fetched as u64);
    counter!(LOGS_MATCHED, "chain" => chain.clone()).increment(matched as u64);
    counter!(ANNOUNCED, "chain" => chain).increment(announced as u64);
}

pub(crate) fn reorg(chain_id: u64) {
    counter!(REORGS, "chain" => chain_id.to_string()).increment(1);
}
