//! Everyday endpoints from issue 19: a channel's announcements (newest first, paged, by
//! status), `/docs` with its embedded viewer and `/openapi.json`, and the SIWE statement naming
//! the channel.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_channel_lists_its_announcements_newest_first_paged_and_by_status() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let other = app.channel(&key, "other").await;
    app.subscribe(&key, &ch, &[CHECKSUMMED.to_owned()]).await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let r = app
            .post_announcement(&key, &ch, json!({ "text": text }))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let r = app
        .post_announcement(&key, &other, json!({ "text": "elsewhere" }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    let path = format!("/v1/channels/{ch}/announcements");
    let first = app.get(&format!("{path}?limit=2"), &key).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let texts: Vec<&str> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["three", "two"], "newest first");
    assert_eq!(first.body["items"][0]["counts"]["total"], json!(1));
    assert_eq!(first.body["items"][0]["counts"]["pending"], json!(1));
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{path}?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(rest.body["items"][0]["id"], json!(ids[0]));
    assert!(rest.body["next_cursor"].is_null());

    let queued = app.get(&format!("{path}?status=queued"), &key).await;
    assert_eq!(queued.body["items"].as_array().unwrap().len(), 3);
    let done = app.get(&format!("{path}?status=completed"), &key).await;
    assert_eq!(done.body["items"], json!([]));
    let bad = app.get(&format!("{path}?status=sent"), &key).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status")
    );
    let bad = app.get(&format!("{path}?cursor=nope"), &key).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Another tenant sees no such channel; a deleted channel lists nothing.
    let stranger = app.tenant("stranger").await;
    let hidden = app.get(&path, &stranger).await;
    assert_eq!(
        (hidden.status, hidden.code()),
        (StatusCode::NOT_FOUND, "channel_not_found")
    );
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/channels/{other}"),
            Some(&key),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    let gone = app
        .get(&format!("/v1/channels/{other}/announcements"), &key)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn docs_serve_an_embedded_viewer_over_the_openapi_document() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/openapi.json"),
        "the viewer reads the document"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing is loaded from elsewhere (no CDN)"
    );
    let spec = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    let spec: serde_json::Value = spec.json().await.unwrap();
    // The same document `herald openapi` prints (which a test holds to openapi.yaml).
    let (_, generated) = herald::http::api().split_for_parts();
    let generated = serde_json::to_value(herald::http::openapi::finish(generated)).unwrap();
    assert_eq!(spec, generated, "/openapi.json is the generated document");
    assert!(spec["paths"]["/v1/channels/{id}/announcements"]["get"].is_object());
    assert!(spec["paths"]["/v1/tenants"]["get"].is_object());
}

#[tokio::test]
async fn the_siwe_statement_names_the_channel() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "Acme Governance").await;
    let r = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/channels/{ch}/subscribe-challenge?address={CHECKSUMMED}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "Subscribe to announcements from \"Acme Governance\" (herald channel {ch})."
        )),
        "{message}"
    );
}

#[tokio::test]
async fn the_eta_is_null_and_flagged_stale_while_nothing_moves() {
    // No workers: the delivery stays pending.
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    app.subscribe(&key, &ch, &[CHECKSUMMED.to_owned()]).await;
    let r = app
        .post_announcement(&key, &ch, json!({ "text": "hi" }))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let fresh = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(fresh.body["eta_stale"], json!(false), "{}", fresh.body);

    // Made long ago, still pending, nothing settled recently: stalled.
    let moved = app
        .raw_strings(&format!(
            "UPDATE announcements SET created_at = '2020-01-01T00:00:00+00:00' \
             WHERE id = '{id}' RETURNING id"
        ))
        .await;
    assert_eq!(moved, std::slice::from_ref(&id));
    let stalled = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(stalled.body["eta_stale"], json!(true), "{}", stalled.body);
    assert!(stalled.body["eta_seconds"].is_null(), "{}", stalled.body);
}
