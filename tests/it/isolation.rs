//! Tenant isolation: tenant B gets 404 (never 403) on every route that names A's objects.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{addresses, TestApp};

#[tokio::test]
async fn another_tenants_objects_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let ch = app.channel(&a, "a-only").await;
    let subs = addresses(1, 2);
    app.subscribe(&a, &ch, &subs).await;
    let created = app
        .post(
            &format!("/v1/channels/{ch}/announcements"),
            &a,
            json!({ "text": "secret" }),
        )
        .await;
    let ann = created.body["id"].as_str().unwrap().to_owned();
    let addr = &subs[0];

    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/v1/channels/{ch}"), None),
        (
            Method::PATCH,
            format!("/v1/channels/{ch}"),
            Some(json!({ "name": "stolen" })),
        ),
        (Method::DELETE, format!("/v1/channels/{ch}"), None),
        (Method::GET, format!("/v1/channels/{ch}/subscribers"), None),
        (
            Method::PUT,
            format!("/v1/channels/{ch}/subscribers/{addr}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/channels/{ch}/subscribers/{addr}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/channels/{ch}/subscribers/batch"),
            Some(json!({ "addresses": [addr] })),
        ),
        (
            Method::POST,
            format!("/v1/channels/{ch}/announcements"),
            Some(json!({ "text": "x" })),
        ),
        (Method::GET, format!("/v1/announcements/{ann}"), None),
        (
            Method::GET,
            format!("/v1/announcements/{ann}/deliveries"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let reply = app.call(method.clone(), &path, Some(&b), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
    }
    // B's listing shows none of A's channels, and A's objects are untouched.
    let list = app.get("/v1/channels", &b).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    let still = app.get(&format!("/v1/channels/{ch}"), &a).await;
    assert_eq!(
        (still.status, still.body["name"].as_str()),
        (StatusCode::OK, Some("a-only"))
    );
    let subscribers = app.get(&format!("/v1/channels/{ch}/subscribers"), &a).await;
    assert_eq!(subscribers.body["items"].as_array().unwrap().len(), 2);
}
