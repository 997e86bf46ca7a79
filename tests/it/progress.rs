//! An announcement's progress view: its topic, and an ETA from the pace or the rate budget.
//! Workers are off here, so deliveries stay pending and every figure is deterministic.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn announcement_shows_its_topic_and_an_eta_from_the_rate_budget() {
    let app = TestApp::spawn_with(|c| {
        c.xmtp.governor = herald::xmtp::GovernorMode::On;
        c.xmtp.rate_per_minute = 600;
    })
    .await;
    let key = app.tenant("progress").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(7, 50)).await;
    let r = app
        .post(
            &format!("/v1/channels/{channel}/topics"),
            &key,
            json!({ "name": "security" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            json!({ "text": "patch now", "topic": "security" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["topic"], "security", "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["topic"], "security");
    assert_eq!(got.body["counts"]["pending"], 50);
    // Nothing sent yet: the budget alone, 50 messages at 600 per minute.
    assert_eq!(got.body["eta_seconds"], 5, "{}", got.body);

    // Untargeted and nobody waiting: no topic, and no ETA once completed.
    let empty = app.channel(&key, "empty").await;
    let r = app
        .post(
            &format!("/v1/channels/{empty}/announcements"),
            &key,
            json!({ "text": "hello" }),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(got.body["status"], "completed", "{}", got.body);
    assert_eq!(got.body["topic"], json!(null));
    assert_eq!(got.body["eta_seconds"], json!(null));
}

#[tokio::test]
async fn eta_is_unknown_before_any_pace_without_a_governor() {
    let app = TestApp::spawn().await;
    let key = app.tenant("progress").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(8, 3)).await;
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            json!({ "text": "hi" }),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(got.body["counts"]["pending"], 3, "{}", got.body);
    assert_eq!(got.body["eta_seconds"], json!(null), "{}", got.body);
    assert_eq!(got.body["topic"], json!(null));
}

/// A gauge's value in a Prometheus text exposition.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_queue_depth_and_the_age_of_the_oldest_due_delivery() {
    let app = TestApp::spawn().await;
    let key = app.tenant("lag").await;
    let channel = app.channel(&key, "news").await;
    app.subscribe(&key, &channel, &addresses(9, 4)).await;
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            json!({ "text": "waiting" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // Scrape until the oldest delivery is a second old (no fixed sleep). The recorder is
    // process-wide: another test's scrape may set the gauges in between, so this app's
    // figures are looked for over many scrapes.
    let mut seen = Vec::new();
    for _ in 0..300 {
        let scrape = reqwest::get(app.url("/metrics")).await.unwrap();
        let text = scrape.text().await.unwrap();
        let lag = gauge(&text, "herald_delivery_lag_seconds");
        let pending = gauge(&text, "herald_deliveries_pending");
        if lag.is_some_and(|l| (1.0..60.0).contains(&l)) && pending == Some(4.0) {
            return;
        }
        seen.push((lag, pending));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    seen.dedup();
    panic!("expected lag ≥ 1 s and 4 pending within 30 s, saw {seen:?}");
}
