//! The accept loop (issue 20): half-sent requests are closed after the header-read timeout
//! and cannot take the server down past its connection cap, and requests hyper cannot parse
//! are answered with our `{code, detail}` JSON.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{send, TestApp};

/// Upper bound on waiting for the server in these tests; reaching it fails the test (it is a
/// hang guard, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; everything it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .ok();
    out
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_health_still_answers() {
    const CAP: usize = 4;
    let app = TestApp::spawn_with(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.max_connections = CAP;
    })
    .await;
    // Twice as many half-sent requests as the server takes connections.
    let mut slow = Vec::new();
    for _ in 0..CAP * 2 {
        let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: herald\r\nx-slow: 1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let health = tokio::time::timeout(PATIENCE, send(app.client.get(app.url("/healthz"))))
        .await
        .expect("/healthz answers while half-sent requests are open");
    assert_eq!(health.status, StatusCode::OK);
    // Every half-sent connection is closed by the server without a response to the request
    // it never finished.
    for mut stream in slow {
        let reply = read_to_close(&mut stream).await;
        assert!(
            !String::from_utf8_lossy(&reply).contains("200 OK"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// Sends raw bytes and parses the response: status, content type, JSON body.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr(app)).await.unwrap();
    // The server may answer and close before reading everything.
    let _ = stream.write_all(request).await;
    let bytes = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn unparseable_requests_get_json_errors() {
    let app = TestApp::spawn().await;
    let long_target = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let mut many_headers = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    for i in 0..200 {
        many_headers.push_str(&format!("x-h{i}: 1\r\n"));
    }
    many_headers.push_str("\r\n");
    let cases: [(&[u8], u16, &str); 3] = [
        (b"THIS IS NOT HTTP\r\n\r\n", 400, "bad_request"),
        (long_target.as_bytes(), 414, "uri_too_long"),
        (many_headers.as_bytes(), 431, "headers_too_large"),
    ];
    for (request, status, code) in cases {
        let (got, content_type, body) = raw(&app, request).await;
        assert_eq!(got, status, "{code}: {body}");
        assert_eq!(content_type, "application/json", "{code}");
        assert_eq!(body["code"], code);
        assert!(body["detail"].is_string());
    }
    // Well-formed requests on the same server are unaffected.
    let (status, _, body) = raw(
        &app,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
