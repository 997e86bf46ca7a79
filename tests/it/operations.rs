//! Probes, metrics, and the committed OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness_probes() {
    let app = TestApp::spawn().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    assert_eq!(
        health.headers["x-request-id"].len(),
        26,
        "every response carries a request id"
    );
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    // The XMTP part: the doctor's checks of the embedded node, all passing.
    let xmtp = &ready.body["xmtp"];
    assert_eq!(xmtp["ok"], true, "{xmtp}");
    let names: Vec<&str> = xmtp["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["connect", "identity", "mls", "cutover", "budget"],
        "{xmtp}"
    );
}

#[tokio::test]
async fn metrics_expose_http_and_announcement_counters() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    app.post(
        &format!("/v1/channels/{ch}/announcements"),
        &key,
        json!({ "text": "hi" }),
    )
    .await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("herald_http_requests_total{method=\"POST\",route=\"/v1/channels/{id}/announcements\",status=\"202\"}"), "{text}");
    assert!(text.contains("herald_http_request_duration_seconds"));
    assert!(text.contains("herald_announcements_created_total"));
    assert!(text.contains("herald_deliveries_created_total{status=\"pending\"}"));
    assert!(
        text.contains("herald_deliveries_pending"),
        "queue depth gauge: {text}"
    );
}

#[test]
fn committed_openapi_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .unwrap_or_default();
    let generated = herald::http::openapi::yaml();
    assert!(
        committed == generated,
        "openapi.yaml is out of date with the code; regenerate it with `make openapi` \
         (cargo run -q -- openapi > openapi.yaml) and commit the result"
    );
}
