//! `ApiError`: the one error type handlers return, rendered as `{"code", "detail"}`.
//!
//! Codes are stable snake_case nouns clients can match on; `detail` is for humans. 5xx bodies
//! never carry internal error text: the cause is logged once here, where the error is turned
//! into a response, and the client sees a generic message.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// Error body returned by every endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `channel_not_found`.
    #[schema(example = "channel_not_found")]
    pub code: String,
    /// Human-readable explanation.
    pub detail: String,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be parsed.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: missing or wrong credentials.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 404: no such object, or it belongs to another tenant (never 403, so existence does not
    /// leak across tenants).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the route exists but not with this method.
    #[error("this route does not support the request method")]
    MethodNotAllowed,
    /// 409: the request conflicts with current state.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 413: the body exceeds the configured limit.
    #[error("request body is larger than this server accepts")]
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: the request parsed but breaks a rule.
    #[error("{detail}")]
    Validation { code: &'static str, detail: String },
    /// 429: the tenant exceeded its request rate.
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// 429: another limit or quota (public per-client rate, outstanding challenges, tenant
    /// quotas), with its own code and a reason.
    #[error("{detail}")]
    TooMany {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// 408: the request took longer than the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// 503: the database cannot be reached right now (down, restarting, or every connection
    /// busy past the pool's acquire timeout). Clients retry later; nothing was changed.
    #[error("the database is unavailable; retry later")]
    DatabaseUnavailable,
    /// 500: a bug or an unexpected failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn validation(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Validation {
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable | Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> String {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Validation { code, .. }
            | Self::TooMany { code, .. } => (*code).to_owned(),
            Self::Unauthorized => "unauthorized".into(),
            Self::NotFound(what) => format!("{what}_not_found"),
            Self::MethodNotAllowed => "method_not_allowed".into(),
            Self::PayloadTooLarge => "payload_too_large".into(),
            Self::UnsupportedMediaType => "unsupported_media_type".into(),
            Self::RateLimited { .. } => "rate_limited".into(),
            Self::Timeout => "request_timeout".into(),
            Self::Unavailable => "service_unavailable".into(),
            Self::DatabaseUnavailable => "database_unavailable".into(),
            Self::Internal(_) => "internal_error".into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(e) => {
                // An outage is not a bug: logged at warn, answered 503 so clients retry.
                tracing::warn!(error = %e, "database unavailable");
                Self::DatabaseUnavailable
            }
            StoreError::Conflict(_) => Self::Conflict {
                code: "conflict",
                detail: "the request conflicts with stored data".into(),
            },
            err => Self::Internal(Box::new(err)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            // Logged here, once, with the full source chain; the client gets no internals.
            let mut chain = cause.to_string();
            let mut source = cause.source();
            while let Some(inner) = source {
                chain.push_str(": ");
                chain.push_str(&inner.to_string());
                source = inner.source();
            }
            tracing::error!(error = %chain, "request failed");
        }
        let status = self.status_code();
        let body = ErrorBody {
            code: self.code(),
            detail: clip(self.to_string()),
        };
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::TooMany {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // RFC 6750: tell the client which scheme to use.
            Self::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Longest `detail` returned, in characters. Details quote input (a condition literal, an
/// address, serde's "invalid type: string ..."), and a client sending a megabyte of digits must
/// not get a megabyte back.
pub const MAX_DETAIL_CHARS: usize = 300;

/// `text` cut to [`MAX_DETAIL_CHARS`] characters, marked with `…` when cut.
pub fn clip(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Largest plain-text error body read back to quote in the JSON replacing it.
const MAX_FOREIGN_BODY: usize = 4096;

/// Middleware giving error responses written outside our handlers (axum's path and query
/// rejections, routing, tower layers) the same `{code, detail}` JSON body as ours. A response
/// that already is JSON passes untouched.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_FOREIGN_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    // 5xx text may be internal; only client errors quote what the rejection said.
    let detail = match status.canonical_reason().unwrap_or("error") {
        reason if text.is_empty() || status.is_server_error() => reason.to_owned(),
        reason => format!("{reason}: {text}"),
    };
    let body = ErrorBody {
        code: status_code_name(status).to_owned(),
        detail: clip(detail),
    };
    let mut out = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The stable `code` for an error status nobody gave a more specific one.
pub fn status_code_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "service_unavailable",
        500..=599 => "internal_error",
        _ => "client_error",
    }
}

/// A complete `{code, detail}` response for `status`, as bytes on the wire; used where hyper
/// answers a request it could not parse (see `serve`).
pub fn raw_error_response(status: StatusCode, detail: &str) -> Vec<u8> {
    let body = serde_json::json!({"code": status_code_name(status), "detail": detail}).to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}
