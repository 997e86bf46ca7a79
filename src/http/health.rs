//! Probes and metrics: `/healthz` (process is up), `/readyz` (database reachable), `/metrics`
//! (with the delivery queue's depth and lag gauges refreshed at each scrape).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct HealthOut {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyOut {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The XMTP network's checks (the same as `herald doctor`, refreshed at most every 30 s).
    /// Informational: announcements are accepted and kept while the network is unreachable,
    /// so a failing network does not make the replica unready.
    pub xmtp: XmtpReadyOut,
}

#[derive(Serialize, ToSchema)]
pub struct XmtpReadyOut {
    pub ok: bool,
    #[schema(example = "production")]
    pub network: String,
    pub checks: Vec<XmtpCheckOut>,
}

#[derive(Serialize, ToSchema)]
pub struct XmtpCheckOut {
    #[schema(example = "tls")]
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// What to change, when the check failed.
    pub fix: Option<String>,
}

/// Liveness: answers while the process serves HTTP; touches no dependency.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "OK", body = HealthOut)))]
async fn healthz() -> axum::Json<HealthOut> {
    axum::Json(HealthOut { status: "ok" })
}

/// Readiness: the database answers a query. The body also reports the XMTP network's checks.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "OK", body = ReadyOut), (status = 503, description = "Database unreachable", body = ErrorBody))
)]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<ReadyOut>, ApiError> {
    match state.store.ping().await {
        Ok(()) => {
            let report = state.xmtp.readiness().await;
            Ok(axum::Json(ReadyOut {
                status: "ready",
                xmtp: XmtpReadyOut {
                    ok: report.ok,
                    network: report.network,
                    checks: report
                        .checks
                        .into_iter()
                        .map(|c| XmtpCheckOut {
                            name: c.name.to_owned(),
                            ok: c.ok,
                            detail: c.detail,
                            fix: c.fix,
                        })
                        .collect(),
                },
            }))
        }
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::Unavailable)
        }
    }
}

/// Prometheus metrics in text exposition format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Queue depth and lag are read at scrape time so they are exact however many replicas
    // write; both are index scans. Concurrent, so a database outage costs one acquire timeout.
    let now = chrono::Utc::now();
    let (pending, oldest) = tokio::join!(
        state.store.pending_deliveries(),
        state.store.pipeline().oldest_due(now)
    );
    match pending {
        Ok(n) => metrics::gauge!("herald_deliveries_pending").set(n as f64),
        Err(err) => tracing::warn!(error = %err, "could not count pending deliveries"),
    }
    match oldest {
        Ok(oldest) => {
            let lag = oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
            metrics::gauge!("herald_delivery_lag_seconds").set(lag);
        }
        Err(err) => tracing::warn!(error = %err, "could not read the delivery lag"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}
