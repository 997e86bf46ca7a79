//! `POST /v1/tenants` and API-key handling.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn admin_creates_tenant_and_key_is_shown_once_and_stored_hashed() {
    let app = TestApp::spawn().await;
    let reply = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({ "name": "Acme" }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let key = reply.body["api_key"].as_str().unwrap();
    assert!(key.starts_with("hk_") && key.len() >= 35, "{key}");
    assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(reply.body["id"].as_str().unwrap().starts_with("ten_"));
    assert_eq!(reply.body["name"], "Acme");

    let stored = app.raw_strings("SELECT key_hash FROM api_keys").await;
    assert_eq!(stored, vec![herald::crypto::hash_token(key)]);
    assert!(!stored[0].contains(&key[3..]));

    // The key works.
    assert_eq!(app.get("/v1/channels", key).await.status, StatusCode::OK);
}

#[tokio::test]
async fn tenant_creation_requires_the_admin_token() {
    let app = TestApp::spawn().await;
    let body = Some(json!({ "name": "Acme" }));
    let none = app
        .call(Method::POST, "/v1/tenants", None, body.clone())
        .await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let wrong = app
        .call(
            Method::POST,
            "/v1/tenants",
            Some("hadm_wrong"),
            body.clone(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A tenant API key is not an admin token.
    let key = app.tenant("first").await;
    let tenant_key = app
        .call(Method::POST, "/v1/tenants", Some(&key), body)
        .await;
    assert_eq!(tenant_key.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_name_is_validated_and_unknown_fields_rejected() {
    let app = TestApp::spawn().await;
    let empty = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({ "name": "  " }))
        .await;
    assert_eq!(
        (empty.status, empty.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name")
    );
    let long = app
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            json!({ "name": "x".repeat(201) }),
        )
        .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    let extra = app
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            json!({ "name": "a", "plan": "gold" }),
        )
        .await;
    assert_eq!(
        (extra.status, extra.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
}

#[tokio::test]
async fn generated_admin_token_is_stored_hashed() {
    // Without a configured admin token the app generates one and keeps only its hash.
    let app = TestApp::spawn_with(|c| c.admin_token = None).await;
    let stored = app
        .raw_strings("SELECT value FROM settings WHERE name = 'admin_token_sha256'")
        .await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 64, "a SHA-256 hex digest, not the token");
    let reply = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({ "name": "Acme" }))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
