//! JSON-RPC access for one chain: alloy HTTP providers behind our own failover, retry with
//! exponential backoff, client-side rate limit and per-request timeout.
//!
//! We keep the retry loop here instead of alloy's layers because the watcher needs to see the
//! error class: "range too large" must come back immediately so the caller can halve the range,
//! while transport failures should rotate to the next URL and back off.

use alloy::primitives::B256;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{BlockNumberOrTag, Filter, Log};
use alloy::transports::http::reqwest::Url;
use alloy::transports::{RpcError as AlloyRpcError, TransportErrorKind};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use super::config::{redact_url, ChainConfig};
use super::metrics;
use super::store::BlockRef;

/// Retry schedule for one logical RPC call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, across all endpoints.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub base_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The provider refused the `eth_getLogs` span (too many results / range too large).
    /// Not retried here: the caller retries with a smaller range.
    #[error("provider refused the log range: {0}")]
    RangeTooLarge(String),
    /// Every attempt failed with transport errors, rate limits, timeouts or server errors.
    /// Retryable later.
    #[error("rpc unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    /// The node answered with an error that retrying cannot fix (bad params, unknown method).
    #[error("rpc rejected the request ({code}): {message}")]
    Rejected { code: i64, message: String },
    /// A block the chain reported is not (yet or any more) available: a race with a reorg or
    /// a lagging load-balanced node. Retryable.
    #[error("block {0} not available from the node")]
    MissingBlock(u64),
}

impl RpcError {
    /// Whether the watcher should retry the step later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, RpcError::Rejected { .. })
    }
}

/// How one failed attempt is handled.
enum Class {
    Range(String),
    Retry(&'static str, String),
    Fatal(i64, String),
}

struct Endpoint {
    provider: RootProvider,
    /// Scheme and host only: safe to log.
    label: String,
    /// Spellings of the full URL (as configured and as normalised by the URL parser) to
    /// scrub from error texts, which often quote the URL and with it any API key.
    secrets: Vec<String>,
}

impl Endpoint {
    fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), &self.label)
        })
    }
}

/// RPC client for one chain.
pub struct ChainRpc {
    chain_id: u64,
    endpoints: Vec<Endpoint>,
    current: AtomicUsize,
    policy: RetryPolicy,
    timeout: Duration,
    /// Earliest instant the next request may start (client-side rate limit).
    next_slot: Mutex<Instant>,
    interval: Option<Duration>,
}

impl ChainRpc {
    /// Builds providers for every `rpc_urls` entry; invalid URLs are a config error.
    pub fn new(config: &ChainConfig, policy: RetryPolicy) -> Result<Self, RpcError> {
        let mut endpoints = Vec::with_capacity(config.rpc_urls.len());
        for url in &config.rpc_urls {
            let parsed: Url = url.parse().map_err(|_| RpcError::Rejected {
                code: 0,
                message: format!("invalid rpc url {}", redact_url(url)),
            })?;
            let mut secrets = vec![url.clone(), parsed.as_str().to_owned()];
            // Longest first, so a shorter spelling never leaves part of a longer one behind.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            secrets.dedup();
            endpoints.push(Endpoint {
                provider: RootProvider::new_http(parsed),
                label: redact_url(url),
                secrets,
            });
        }
        if endpoints.is_empty() {
            return Err(RpcError::Rejected {
                code: 0,
                message: "no rpc_urls configured".into(),
            });
        }
        let interval = (config.requests_per_second > 0)
            .then(|| Duration::from_secs_f64(1.0 / f64::from(config.requests_per_second)));
        Ok(Self {
            chain_id: config.chain_id,
            endpoints,
            current: AtomicUsize::new(0),
            policy,
            timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            next_slot: Mutex::new(Instant::now()),
            interval,
        })
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        self.call(|p| async move { p.get_block_number().await })
            .await
    }

    /// Header of block `number` (hash and parent hash).
    pub async fn block(&self, number: u64) -> Result<BlockRef, RpcError> {
        let block = self
            .call(|p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(number))
                    .await
            })
            .await?
            .ok_or(RpcError::MissingBlock(number))?;
        Ok(BlockRef {
            number,
            hash: block.header.hash,
            parent_hash: block.header.parent_hash,
        })
    }

    /// `eth_getLogs` for one filter.
    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, RpcError> {
        self.call(|p| {
            let filter = filter.clone();
            async move { p.get_logs(&filter).await }
        })
        .await
    }

    /// `eth_call` of `data` to `to` at block `number` (a view call; nothing is sent).
    pub async fn call_at(
        &self,
        to: alloy::primitives::Address,
        data: alloy::primitives::Bytes,
        number: u64,
    ) -> Result<alloy::primitives::Bytes, RpcError> {
        let request = alloy::rpc::types::TransactionRequest::default()
            .to(to)
            .input(data.into());
        self.call(|p| {
            let request = request.clone();
            async move { p.call(request).block(number.into()).await }
        })
        .await
    }

    /// The block hash a transaction is included in and the block-wide index of its first
    /// log; `None` when the node does not know the transaction (e.g. just reorged out).
    pub async fn tx_log_base(&self, tx_hash: B256) -> Result<Option<(B256, u64)>, RpcError> {
        let receipt = self
            .call(|p| async move { p.get_transaction_receipt(tx_hash).await })
            .await?;
        Ok(receipt.and_then(|r| {
            let first = r.logs().first().and_then(|l| l.log_index)?;
            Some((r.block_hash?, first))
        }))
    }

    async fn call<T, F, Fut>(&self, f: F) -> Result<T, RpcError>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, AlloyRpcError<TransportErrorKind>>>,
    {
        let mut last = String::new();
        for attempt in 0..self.policy.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            self.throttle().await;
            let index = self.current.load(Ordering::Relaxed) % self.endpoints.len();
            let endpoint = &self.endpoints[index];
            let class = match tokio::time::timeout(self.timeout, f(endpoint.provider.clone())).await
            {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => classify(&err),
                Err(_) => Class::Retry("timeout", format!("timed out after {:?}", self.timeout)),
            };
            match class {
                Class::Range(detail) => {
                    let detail = endpoint.scrub(&detail);
                    metrics::rpc_error(self.chain_id, "range_too_large");
                    return Err(RpcError::RangeTooLarge(detail));
                }
                Class::Fatal(code, message) => {
                    let message = endpoint.scrub(&message);
                    metrics::rpc_error(self.chain_id, "rpc_error");
                    return Err(RpcError::Rejected { code, message });
                }
                Class::Retry(kind, detail) => {
                    let detail = endpoint.scrub(&detail);
                    metrics::rpc_error(self.chain_id, kind);
                    tracing::debug!(chain.id = self.chain_id, rpc.endpoint = %endpoint.label, attempt, kind, "rpc attempt failed: {detail}");
                    last = format!("{}: {detail}", endpoint.label);
                    // Fail over: the next attempt goes to the next URL (wrapping around).
                    if self.endpoints.len() > 1 {
                        let _ = self.current.compare_exchange(
                            index,
                            (index + 1) % self.endpoints.len(),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
            }
        }
        Err(RpcError::Unavailable {
            attempts: self.policy.max_attempts,
            last,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.policy.max_backoff);
        // Up to 25% jitter so several watchers do not retry in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        capped + capped.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    async fn throttle(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Sorts an alloy error into range / retry / fatal. Providers phrase range limits in many ways
/// ("query returned more than 10000 results", "block range is too large", "exceed maximum
/// block range", "Log response size exceeded"), so the message is matched loosely.
fn classify(err: &AlloyRpcError<TransportErrorKind>) -> Class {
    match err {
        AlloyRpcError::ErrorResp(payload) => {
            let message = payload.message.to_string();
            if looks_like_range_error(&message) {
                Class::Range(message)
            } else if matches!(payload.code, -32601 | -32602) {
                Class::Fatal(payload.code, message)
            } else if payload.code == 429 || message.to_lowercase().contains("rate limit") {
                Class::Retry("rate_limited", message)
            } else {
                Class::Retry("rpc_error", format!("{}: {message}", payload.code))
            }
        }
        AlloyRpcError::Transport(TransportErrorKind::HttpError(http)) => {
            if looks_like_range_error(&http.body) || http.status == 413 {
                Class::Range(format!("http {}", http.status))
            } else if http.status == 429 {
                Class::Retry("rate_limited", "http 429".into())
            } else {
                Class::Retry("transport", format!("http {}", http.status))
            }
        }
        other => Class::Retry("transport", other.to_string()),
    }
}

fn looks_like_range_error(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "block range",
        "range too large",
        "range is too large",
        "too many results",
        "more than",
        "response size",
        "exceed maximum",
        "too many logs",
        "limit exceeded",
        // QuickNode/others: "eth_getLogs is limited to a 10,000 range".
        "limited to a",
        "range limit",
    ]
    .iter()
    .any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_range_messages_are_recognised() {
        assert!(looks_like_range_error(
            "query returned more than 10000 results"
        ));
        assert!(looks_like_range_error(
            "eth_getLogs block range is too large"
        ));
        assert!(looks_like_range_error("Log response size exceeded."));
        assert!(looks_like_range_error(
            "eth_getLogs is limited to a 10,000 range"
        ));
        assert!(!looks_like_range_error("header not found"));
    }
}
