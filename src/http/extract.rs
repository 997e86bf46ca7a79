//! Request extractors: JSON bodies and query strings with our error format, and pagination.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::strict_json::{self, Problem};
use crate::store::Page;

/// Largest page a list endpoint returns.
pub const MAX_PAGE: u32 = 1000;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 100;

/// `Json<T>` whose rejections become [`ApiError`]s: a body not declared as JSON is 415, syntax
/// errors are 400, an oversized body is 413, and well-formed JSON of the wrong shape (unknown
/// fields, a top-level array, a repeated key, a control character in a string) is 422.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::bad_request("unreadable_body", rejection.body_text()),
            }
        })?;
        strict_json::check(&bytes).map_err(|problem| {
            let code = match problem {
                Problem::NotAnObject => "invalid_body",
                Problem::DuplicateKey(_) => "duplicate_key",
                Problem::ControlCharacter(_) => "control_character",
            };
            ApiError::validation(code, problem.to_string())
        })?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/*+json`,
/// parameters (`; charset=utf-8`) allowed.
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::validation("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    }
}

/// Middleware refusing (400 `control_character`) a request whose path or query string encodes
/// a control character (`%00`-`%1F`, `%7F`): path segments and query values reach the
/// database as text (a cursor, a topic name) and Postgres cannot store or compare a NUL.
pub async fn refuse_encoded_controls(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    if encodes_control(target) {
        return ApiError::bad_request(
            "control_character",
            "the path or query string encodes a control character",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a percent-encoded string decodes to a control character anywhere.
fn encodes_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// Query parameters shared by list endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Validates the page size and the cursor (`is_cursor` says whether a string could have
    /// come from this endpoint's `next_cursor`) and returns a page asking for one extra item, so
    /// the caller can tell whether another page exists.
    pub fn probe_page(&self, is_cursor: impl Fn(&str) -> bool) -> Result<(Page, u32), ApiError> {
        let limit = check_limit(self.limit)?;
        check_cursor(self.cursor.as_deref(), is_cursor)?;
        Ok((
            Page {
                limit: limit + 1,
                cursor: self.cursor.clone(),
            },
            limit,
        ))
    }
}

/// The page size asked for, or the default; 422 `invalid_limit` outside 1 to [`MAX_PAGE`].
pub fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// 400 `invalid_cursor` unless the cursor is absent or `is_cursor` accepts it: a cursor this
/// server never handed out would otherwise be compared as a string and silently match nothing
/// (or everything).
pub fn check_cursor(
    cursor: Option<&str>,
    is_cursor: impl Fn(&str) -> bool,
) -> Result<(), ApiError> {
    match cursor {
        Some(c) if !is_cursor(c) => Err(ApiError::bad_request(
            "invalid_cursor",
            "cursor is not a next_cursor value returned by this endpoint",
        )),
        _ => Ok(()),
    }
}

/// Trims a probe result to `limit` items and derives the next cursor from the last kept item.
pub fn paginate<T>(
    mut items: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    (items, next)
}

/// `Query<T>` whose rejections become a 400 [`ApiError`] in our format.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}
