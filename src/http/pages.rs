//! The browser pages herald serves itself, embedded in the binary (no CDN, no framework, no
//! third-party code): the public subscribe page `/subscribe/{channel_id}` and the tenant
//! console `/console`, plus their script and style files under `/pages/`.
//!
//! The pages only call herald's own REST API from herald's origin. Every response carries a
//! Content-Security-Policy allowing nothing but that origin (no inline script); the subscribe
//! page may be framed by `pages.frame_ancestors`, the console by nobody.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use crate::config::PagesConfig;

const SUBSCRIBE_HTML: &str = include_str!("pages/subscribe.html");
const CONSOLE_HTML: &str = include_str!("pages/console.html");

/// Script and style files, by the name they are served under (`/pages/{name}`).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "pages.css",
        "text/css; charset=utf-8",
        include_str!("pages/pages.css"),
    ),
    (
        "subscribe.js",
        "text/javascript; charset=utf-8",
        include_str!("pages/subscribe.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("pages/console.js"),
    ),
];

/// The policy of every page response, with the given `frame-ancestors`.
fn csp(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// A page (or asset) with the security headers every one of them gets.
fn page(body: &'static str, content_type: &'static str, policy: &str, framable: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !framable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// `GET /subscribe/{channel_id}`, `GET /console` and `GET /pages/{asset}`; nothing when the
/// pages are turned off.
pub fn router<S: Clone + Send + Sync + 'static>(config: &PagesConfig) -> Router<S> {
    if !config.enabled {
        return Router::new();
    }
    let subscribe_policy: Arc<str> = csp(config.frame_ancestors.trim()).into();
    let console_policy: Arc<str> = csp("'none'").into();
    let asset_policy = console_policy.clone();
    Router::new()
        .route(
            "/subscribe/{channel_id}",
            get(move |Path(_): Path<String>| {
                let policy = subscribe_policy.clone();
                async move { page(SUBSCRIBE_HTML, "text/html; charset=utf-8", &policy, true) }
            }),
        )
        .route(
            "/console",
            get(move || {
                let policy = console_policy.clone();
                async move { page(CONSOLE_HTML, "text/html; charset=utf-8", &policy, false) }
            }),
        )
        .route(
            "/pages/{name}",
            get(move |Path(name): Path<String>| {
                let policy = asset_policy.clone();
                async move {
                    match ASSETS.iter().find(|(n, _, _)| *n == name) {
                        Some((_, kind, body)) => Ok(page(body, kind, &policy, true)),
                        None => Err(ApiError::NotFound("route")),
                    }
                }
            }),
        )
}
