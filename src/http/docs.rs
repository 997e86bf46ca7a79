//! `/docs`: the API reference in a browser, served by herald itself: a small self-written
//! HTML/JS viewer (embedded in the binary; no CDN, no third-party code) over `/openapi.json`,
//! the same document as the committed `openapi.yaml`.

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

const VIEWER: &str = include_str!("docs.html");

/// `GET /docs` and `GET /openapi.json`, for the given document.
pub fn router<S: Clone + Send + Sync + 'static>(spec: &utoipa::openapi::OpenApi) -> Router<S> {
    let json: Arc<str> = spec
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        .into();
    Router::new()
        .route("/docs", get(|| async { Html(VIEWER) }))
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                        .into_response()
                }
            }),
        )
}
