//! `GET /v1/announcements/{id}/events`: the live progress stream (Server-Sent Events) read to
//! its `completed` event; a client leaving mid-stream and a shutdown with streams open are
//! harmless.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Reads Server-Sent Events from a streaming response, one `(event, data)` at a time.
pub struct EventReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buffer: String,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or None once the server ended the stream.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((
                    name,
                    serde_json::from_str(&data).expect("event data is JSON"),
                ));
            }
            let chunk = self.body.next().await?.expect("stream reads");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

async fn open(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    let response = app
        .client
        .get(app.url(&format!("/v1/announcements/{id}/events")))
        .bearer_auth(key)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    response
}

#[tokio::test]
async fn the_stream_shows_progress_then_completed_and_ends() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("events").await;
    let channel = app.channel(&key, "news").await;
    // Not on XMTP: each delivery settles `skipped: not_on_xmtp` once a worker looks at it.
    app.subscribe(&key, &channel, &addresses(31, 6)).await;
    let r = app
        .post_announcement(&key, &channel, json!({ "text": "live" }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    let mut events = EventReader::new(open(&app, &key, &id).await);
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        seen.push(event);
    }
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.len() >= 2, "{seen:?}");
    assert_eq!(names[0], "progress", "{seen:?}");
    assert_eq!(names.last(), Some(&"completed"), "{seen:?}");
    assert!(
        names[..names.len() - 1].iter().all(|n| *n == "progress"),
        "{seen:?}"
    );
    let (_, done) = seen.last().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["counts"],
        json!({"total": 6, "pending": 0, "delivered": 0, "failed": 0, "skipped": 6}),
        "{done}"
    );
    assert_eq!(done["eta_seconds"], Value::Null);
    // The last event equals what the plain read shows.
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(got.body["counts"], done["counts"], "{}", got.body);
    // Consecutive progress events differ (unchanged polls send nothing).
    for pair in seen.windows(2).filter(|w| w[1].0 == "progress") {
        assert_ne!(pair[0].1, pair[1].1, "{seen:?}");
    }
}

#[tokio::test]
async fn another_tenants_announcement_is_not_found_and_a_key_is_required() {
    let app = TestApp::spawn().await;
    let owner = app.tenant("owner").await;
    let other = app.tenant("other").await;
    let channel = app.channel(&owner, "news").await;
    app.subscribe(&owner, &channel, &addresses(32, 2)).await;
    let r = app
        .post_announcement(&owner, &channel, json!({ "text": "mine" }))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();

    let path = format!("/v1/announcements/{id}/events");
    let foreign = app.get(&path, &other).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    assert_eq!(foreign.code(), "announcement_not_found", "{}", foreign.body);
    let bogus = app.get("/v1/announcements/ann_nope/events", &owner).await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND);
    let anonymous = app.get(&path, "").await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
}

#[tokio::test]
async fn leaving_mid_stream_is_harmless_and_shutdown_ends_open_streams() {
    // Workers off: the deliveries stay pending, so the stream stays open.
    let mut app = TestApp::spawn().await;
    let key = app.tenant("leave").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(33, 3)).await;
    let r = app
        .post_announcement(&key, &channel, json!({ "text": "waiting" }))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();

    // A client reads the first event and goes away.
    let mut first = EventReader::new(open(&app, &key, &id).await);
    let (name, data) = first.next().await.expect("a first event");
    assert_eq!(name, "progress");
    assert_eq!(data["counts"]["pending"], 3, "{data}");
    drop(first);

    // The server still answers, and a new stream starts from the current state.
    let mut second = EventReader::new(open(&app, &key, &id).await);
    let (name, data) = second.next().await.expect("a first event again");
    assert_eq!(name, "progress");
    assert_eq!(data["status"], "queued", "{data}");

    // A graceful shutdown does not wait for the open stream: the restart returns and the
    // stream ends without a `completed` event.
    app.restart().await;
    while let Some((name, _)) = second.next().await {
        assert_ne!(name, "completed");
    }
    let still = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(still.body["counts"]["pending"], 3, "{}", still.body);
}
