//! A tiny loopback JSON-RPC proxy in front of anvil that injects provider failures:
//! HTTP 503s for the first N requests and "too many results" errors for wide `eth_getLogs`.

use alloy::transports::http::reqwest;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Counters {
    pub unavailable: AtomicU64,
    pub range_rejected: AtomicU64,
    pub get_logs_ok: AtomicU64,
    /// Widest `eth_getLogs` span the proxy let through.
    pub widest_ok_span: AtomicU64,
}

struct Inner {
    upstream: String,
    client: reqwest::Client,
    fail_first: AtomicU64,
    max_span: u64,
    counters: Arc<Counters>,
}

/// Starts the proxy; returns its URL and the counters.
pub async fn start(upstream: &str, fail_first: u64, max_span: u64) -> (String, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let inner = Arc::new(Inner {
        upstream: upstream.to_owned(),
        client: reqwest::Client::new(),
        fail_first: AtomicU64::new(fail_first),
        max_span,
        counters: counters.clone(),
    });
    let app = Router::new().route("/", post(handle)).with_state(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, counters)
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

async fn handle(State(inner): State<Arc<Inner>>, body: String) -> Response {
    if inner
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        inner.counters.unavailable.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream overloaded").into_response();
    }
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if request["method"] == "eth_getLogs" {
        let filter = &request["params"][0];
        if let (Some(from), Some(to)) = (hex_u64(&filter["fromBlock"]), hex_u64(&filter["toBlock"]))
        {
            let span = to - from + 1;
            if span > inner.max_span {
                inner.counters.range_rejected.fetch_add(1, Ordering::SeqCst);
                let error = json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32005, "message": "query returned more than 10000 results"}});
                return (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    error.to_string(),
                )
                    .into_response();
            }
            inner.counters.get_logs_ok.fetch_add(1, Ordering::SeqCst);
            inner
                .counters
                .widest_ok_span
                .fetch_max(span, Ordering::SeqCst);
        }
    }
    match inner
        .client
        .post(&inner.upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(resp) => {
            let text = resp.text().await.unwrap_or_default();
            (StatusCode::OK, [("content-type", "application/json")], text).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
