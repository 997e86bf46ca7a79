//! The REST API: router, shared state, and the layers every route gets (request timeout, body
//! limit checked before buffering, metrics, request tracing).
//!
//! Each resource module owns its handlers, DTOs and `router()`; they are merged here.

pub mod announcements;
pub mod auth;
pub mod channels;
pub mod consent;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod installations;
pub mod keys;
pub mod openapi;
pub mod pages;
pub mod profile;
pub mod quotas;
pub mod rate_limit;
pub mod serve;
pub mod strict_json;
pub mod subscriber_session;
pub mod subscribers;
pub mod subscriptions;
pub mod tenants;
pub mod topics;
pub mod triggers;
pub mod watches;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{HttpConfig, SelfServiceConfig};
use crate::crypto::MasterKey;
use crate::store::Store;
use error::ApiError;
use rate_limit::RateLimiter;

/// What handlers share. Cheap to clone (everything behind `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub kek: Arc<MasterKey>,
    /// The admin token's SHA-256 (hex).
    pub admin_token: Arc<auth::AdminToken>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Per-client limit of the public self-service endpoints.
    pub public_limiter: Arc<RateLimiter>,
    /// Per-tenant quotas.
    pub quotas: Arc<crate::config::QuotaConfig>,
    /// This replica's recent per-tenant quota figures (see [`quotas`]).
    pub quota_tallies: Arc<quotas::QuotaTallies>,
    pub auth_cache: Arc<auth::AuthCache>,
    pub metrics: PrometheusHandle,
    /// Configured chains (`[[chains]]`), against which triggers are validated.
    pub chains: Arc<[crate::chain::ChainConfig]>,
    /// Self-service settings (SIWE domain, challenge lifetime, default welcome text).
    pub selfservice: Arc<SelfServiceConfig>,
    /// The XMTP network channels register and send on.
    pub xmtp: Arc<crate::xmtp::Xmtp>,
    /// Wakes this app's delivery workers when work arrives.
    pub wake: crate::workers::Wake,
    /// Webhook settings (`[webhooks]`): the SSRF allow-list, the secret overlap.
    pub webhooks: Arc<crate::webhooks::WebhookConfig>,
    /// The app's shutdown token: long-lived responses (the progress event stream) end when it
    /// fires, so a graceful shutdown never waits on them.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// `[pages]`: whether the subscribe page and console are served, who may frame them.
    pub pages: Arc<crate::config::PagesConfig>,
}

/// All documented routes, before state and layers are applied.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(tenants::router())
        .merge(keys::router())
        .merge(channels::router())
        .merge(installations::router())
        .merge(subscribers::router())
        .merge(announcements::router())
        .merge(triggers::router())
        .merge(watches::router())
        .merge(subscriptions::router())
        .merge(subscriber_session::router())
        .merge(profile::router())
        .merge(consent::router())
        .merge(topics::router())
        .merge(webhooks::router())
}

/// The complete service: routes plus layers, ready to serve.
pub fn router(state: AppState, config: &HttpConfig) -> Router {
    let (routes, spec) = api().split_for_parts();
    let routes = routes
        .merge(docs::router(&openapi::finish(spec)))
        .merge(pages::router(&state.pages));
    let body_limit = config.body_limit_bytes;
    let timeout = Duration::from_secs(config.request_timeout_secs);
    routes
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req, next| {
            reject_large_bodies(body_limit, req, next)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::Timeout
                }))
                .timeout(timeout),
        )
        .layer(middleware::from_fn(extract::refuse_encoded_controls))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUlid))
        .with_state(state)
}

/// Gives each request an `x-request-id` (kept if the client sent one), echoed on the response
/// and recorded on the request's log span, so a client report can be matched to server logs.
#[derive(Clone, Copy)]
struct MakeRequestUlid;

impl MakeRequestId for MakeRequestUlid {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::from_str(&ulid::Ulid::new().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// The span every request runs in: method, route template (never the raw path, so ids do not
/// explode cardinality), request id, and the tenant once authentication has identified it.
fn request_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "http",
        http.method = %req.method(),
        http.route = route,
        http.request_id = request_id,
        tenant.id = tracing::field::Empty,
    )
}

/// Answers 413 from the declared `Content-Length` alone, before any of the body is read.
/// Bodies without a length (chunked) are capped while streaming by `DefaultBodyLimit`.
async fn reject_large_bodies(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => ApiError::PayloadTooLarge.into_response(),
        _ => next.run(req).await,
    }
}

/// Records request count and latency by route template and status.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("herald_http_requests_total", &labels).increment(1);
    metrics::histogram!(crate::telemetry::HTTP_DURATION, &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
