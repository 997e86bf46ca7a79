//! Logs (tracing, text or JSON) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use crate::config::{LogConfig, LogFormat};

/// Crates whose debug output carries full request URLs: alloy's HTTP transport opens a
/// `ReqwestTransport{url=…}` span per JSON-RPC call, and reqwest logs redirect targets. Chain
/// RPC URLs often embed a provider API key in their path or query (herald's own lines show
/// only the host, see `chain::config::redact_url`), so these crates log at `info` at most,
/// whatever `RUST_LOG` asks for.
const URL_LOGGING_CRATES: &[&str] = &["alloy_transport_http", "reqwest"];

/// Whether a span or event may be recorded regardless of the filter: not above `info` for
/// [`URL_LOGGING_CRATES`]. A separate filter layer, so no `RUST_LOG` directive (however
/// specific its target or span name) can switch it off.
fn url_safe(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    let crate_name = target.split("::").next().unwrap_or(target);
    *meta.level() <= tracing::Level::INFO || !URL_LOGGING_CRATES.contains(&crate_name)
}

/// The subscriber herald logs through: `directives` (a `RUST_LOG`-style filter; invalid ones
/// are ignored) and the URL guard, formatted as `format`, written to `writer`. Tests build it
/// with a capturing writer.
pub fn subscriber<W>(
    directives: &str,
    format: LogFormat,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
    };
    tracing_subscriber::registry()
        .with(output)
        .with(EnvFilter::new(directives))
        .with(filter_fn(url_safe))
}

/// Installs the global log subscriber. `RUST_LOG` overrides the configured filter. Calling it
/// twice is harmless (the second call does nothing), which lets tests share a process.
pub fn init_logging(config: &LogConfig) {
    let directives = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.filter.clone());
    let _ = subscriber(&directives, config.format, std::io::stderr).try_init();
}

/// Request latency histogram: `herald_http_request_duration_seconds`.
pub const HTTP_DURATION: &str = "herald_http_request_duration_seconds";

/// Bucket bounds (seconds) of [`HTTP_DURATION`]: from a cached read (a few ms) to the request
/// timeout's range. Buckets rather than a summary so dashboards can aggregate replicas
/// (`histogram_quantile` over `sum by (le)`), which quantiles computed per process cannot.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide metrics recorder (a global, so it is installed once and shared by every
/// app instance in the process, e.g. in tests).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then
            // our handle renders nothing, which is visible on /metrics rather than fatal.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
