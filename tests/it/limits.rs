//! Authentication failures, body limits, malformed input, rate limits and request timeouts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{send, TestApp};

const ANY_CHANNEL: &str = "ch_01JD3S8Z6XKQ8W4N2M5V7B9C1D";
const ANY_ANNOUNCEMENT: &str = "ann_01JD3S8Z6XKQ8W4N2M5V7B9C1D";
const ANY_ADDRESS: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

#[tokio::test]
async fn every_tenant_route_requires_a_valid_api_key() {
    let app = TestApp::spawn().await;
    let routes = [
        (Method::POST, "/v1/channels".to_owned()),
        (Method::GET, "/v1/channels".to_owned()),
        (Method::GET, format!("/v1/channels/{ANY_CHANNEL}")),
        (Method::PATCH, format!("/v1/channels/{ANY_CHANNEL}")),
        (Method::DELETE, format!("/v1/channels/{ANY_CHANNEL}")),
        (
            Method::GET,
            format!("/v1/channels/{ANY_CHANNEL}/subscribers"),
        ),
        (
            Method::PUT,
            format!("/v1/channels/{ANY_CHANNEL}/subscribers/{ANY_ADDRESS}"),
        ),
        (
            Method::DELETE,
            format!("/v1/channels/{ANY_CHANNEL}/subscribers/{ANY_ADDRESS}"),
        ),
        (
            Method::POST,
            format!("/v1/channels/{ANY_CHANNEL}/subscribers/batch"),
        ),
        (
            Method::POST,
            format!("/v1/channels/{ANY_CHANNEL}/announcements"),
        ),
        (Method::GET, format!("/v1/announcements/{ANY_ANNOUNCEMENT}")),
        (
            Method::GET,
            format!("/v1/announcements/{ANY_ANNOUNCEMENT}/deliveries"),
        ),
        (Method::POST, "/v1/keys".to_owned()),
        (Method::GET, "/v1/keys".to_owned()),
        (
            Method::DELETE,
            "/v1/keys/key_01JD3S8Z6XKQ8W4N2M5V7B9C1D".to_owned(),
        ),
    ];
    for (method, path) in routes {
        for token in [
            None,
            Some("hk_wrongwrongwrongwrongwrongwrongwrongwrong"),
            Some(""),
        ] {
            let reply = app.call(method.clone(), &path, token, None).await;
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{method} {path}"
            );
        }
    }
    let basic = app
        .client
        .get(app.url("/v1/channels"))
        .header("authorization", "Basic dTpw");
    assert_eq!(send(basic).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_bodies_are_rejected_with_413() {
    let app = TestApp::spawn_with(|c| c.http.body_limit_bytes = 1024).await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let big = json!({ "text": "x".repeat(2000) });
    let declared = app
        .post(
            &format!("/v1/channels/{ch}/announcements"),
            &key,
            big.clone(),
        )
        .await;
    assert_eq!(
        (declared.status, declared.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // Without Content-Length (chunked), the limit applies while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(big.to_string().into_bytes())];
    let stream = futures_util::stream::iter(chunks);
    let chunked = app
        .client
        .post(app.url(&format!("/v1/channels/{ch}/announcements")))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    let reply = send(chunked).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let malformed = app
        .client
        .post(app.url("/v1/channels"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"name\": ");
    let reply = send(malformed).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let text = app
        .client
        .post(app.url("/v1/channels"))
        .bearer_auth(&key)
        .body("{\"name\":\"a\"}");
    let reply = send(text).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let unknown = app.get("/v1/nothing-here", &key).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
}

#[tokio::test]
async fn tenants_over_their_rate_are_told_to_back_off() {
    let app = TestApp::spawn_with(|c| c.http.rate_limit_per_second = 1).await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let mut limited = None;
    for _ in 0..5 {
        let reply = app.get("/v1/channels", &a).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("the burst of 2 is exhausted within 5 requests");
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(
        app.get("/v1/channels", &b).await.status,
        StatusCode::OK,
        "other tenants are unaffected"
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_408() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout_secs = 1).await;
    let key = app.tenant("acme").await;
    // A body that trickles in slower than the timeout allows.
    let stream = futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((Ok::<_, std::io::Error>(b"{\"name\":".to_vec()), 1)),
            1 => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Some((Ok(b"\"late\"}".to_vec()), 2))
            }
            _ => None,
        }
    });
    let request = app
        .client
        .post(app.url("/v1/channels"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    let reply = send(request).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::REQUEST_TIMEOUT, "request_timeout")
    );
}
