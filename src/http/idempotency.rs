//! `Idempotency-Key` handling (draft-ietf-httpapi-idempotency-key-header semantics).
//!
//! Keys are scoped per tenant and remembered for 24 hours. The same key with the same request
//! replays the original response; with a different request it is 422
//! `idempotency_key_reused`. A new key is recorded, done, in the transaction (or, on Postgres,
//! the statement) that does the work (one commit), so a concurrent request with the same key
//! waits for it and then replays it; a key already recorded goes through [`begin`], where a
//! record being taken over (expired or stale) answers 409 `idempotency_in_progress`. Validation failures happen before anything is
//! stored, and a request that fails after claiming releases its key for a retry.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::domain::TenantId;
use crate::store::{IdempotencyBegin, IdempotencyKey, Store, StoredResponse};

pub const HEADER: &str = "idempotency-key";

/// Response header set on replayed responses.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Longest accepted key; Stripe's limit, long enough for a UUID plus context.
pub const MAX_KEY_LEN: usize = 255;

/// Reads and validates the header; `None` when the client sent none.
pub fn key_from_headers(
    headers: &HeaderMap,
    tenant: &TenantId,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(IdempotencyKey {
            tenant: tenant.clone(),
            key: key.to_owned(),
        })),
        None => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// Fingerprint of a request: the route target plus the canonical JSON body (object keys
/// sorted, no whitespace), so formatting or key-order differences do not count as a different
/// request.
pub fn request_hash(target: &str, body: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(body, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(target.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// Sorts keys explicitly rather than relying on `serde_json::Map` being a `BTreeMap`, which
/// changes if any crate in the build enables serde_json's `preserve_order` feature.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Claims the key. `Ok(None)` means "go ahead"; `Ok(Some(response))` is the answer to send
/// instead (a replay); errors are the 409/422 cases.
pub async fn begin(
    store: &dyn Store,
    key: &IdempotencyKey,
    hash: &str,
) -> Result<Option<Response>, ApiError> {
    match store.begin_idempotent(key, hash).await? {
        IdempotencyBegin::Started => Ok(None),
        IdempotencyBegin::Replay(stored) => Ok(Some(replay(stored))),
        IdempotencyBegin::Mismatch => Err(ApiError::validation(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        )),
        IdempotencyBegin::InProgress => Err(ApiError::Conflict {
            code: "idempotency_in_progress",
            detail: "a request with this Idempotency-Key is still being processed; retry shortly"
                .into(),
        }),
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status_code).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_and_whitespace_but_not_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "t"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":"t","b":[1,{"x":1,"y":2}]}"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":"t","b":[{"x":1,"y":2},1]}"#).unwrap();
        assert_eq!(request_hash("ch_1", &a), request_hash("ch_1", &b));
        assert_ne!(request_hash("ch_1", &a), request_hash("ch_2", &a));
        assert_ne!(
            request_hash("ch_1", &b),
            request_hash("ch_1", &c),
            "array order matters"
        );
    }
}
