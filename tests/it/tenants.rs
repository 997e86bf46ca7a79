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

/// The ids of a tenant's active keys, oldest first.
async fn key_ids(app: &TestApp, key: &str) -> Vec<String> {
    let listed = app.get("/v1/keys", key).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tenant_rotates_its_key_and_the_revoked_key_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let old = app.tenant("acme").await;
    // Used once, so the authentication cache holds it when it is revoked.
    assert_eq!(app.get("/v1/channels", &old).await.status, StatusCode::OK);
    let old_id = key_ids(&app, &old).await.remove(0);
    assert!(old_id.starts_with("key_"), "{old_id}");

    let created = app
        .post("/v1/keys", &old, json!({"name": "deploy-2"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "deploy-2");
    let new = created.body["api_key"].as_str().unwrap().to_owned();
    let new_id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        key_ids(&app, &new).await,
        vec![old_id.clone(), new_id.clone()]
    );
    let stored = app
        .raw_strings("SELECT key_hash FROM api_keys")
        .await
        .join(" ");
    assert!(!stored.contains(&new), "only the hash is stored");

    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/keys/{old_id}"),
            Some(&new),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let refused = app.get("/v1/channels", &old).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/channels", &new).await.status, StatusCode::OK);
    assert_eq!(key_ids(&app, &new).await, vec![new_id.clone()]);

    // The last key stays; unknown and already revoked keys are 404.
    let last = app
        .call(
            Method::DELETE,
            &format!("/v1/keys/{new_id}"),
            Some(&new),
            None,
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert_eq!(last.code(), "last_api_key");
    for gone in [
        old_id.as_str(),
        "key_01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "nonsense",
    ] {
        let reply = app
            .call(
                Method::DELETE,
                &format!("/v1/keys/{gone}"),
                Some(&new),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{gone}");
        assert_eq!(reply.code(), "api_key_not_found");
    }
    // Another tenant cannot see or revoke them.
    let other = app.tenant("other").await;
    let foreign = app
        .call(
            Method::DELETE,
            &format!("/v1/keys/{new_id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(key_ids(&app, &other).await.len(), 1);
    assert_eq!(app.get("/v1/channels", &new).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_key_records_when_it_was_last_used() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    // The first use records it in the background; poll the list (bounded) until it shows.
    let mut last_used = serde_json::Value::Null;
    for _ in 0..100 {
        let listed = app.get("/v1/keys", &key).await;
        last_used = listed.body["items"][0]["last_used_at"].clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        last_used.is_string(),
        "last_used_at was recorded: {last_used}"
    );
}

#[tokio::test]
async fn the_admin_issues_and_revokes_any_key_and_keys_are_capped() {
    let app = TestApp::spawn_with(|c| c.quotas.max_api_keys = 2).await;
    let first = app.tenant("acme").await;
    let tenants = app.raw_strings("SELECT id FROM tenants").await;
    let tenant = &tenants[0];
    let issued = app
        .post(
            &format!("/v1/tenants/{tenant}/keys"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let second = issued.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/v1/channels", &second).await.status,
        StatusCode::OK
    );

    let over = app.post("/v1/keys", &first, json!({})).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.code(), "quota_exceeded");
    let no_admin = app
        .post(&format!("/v1/tenants/{tenant}/keys"), &first, json!({}))
        .await;
    assert_eq!(no_admin.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .post(
            "/v1/tenants/ten_01HZZZZZZZZZZZZZZZZZZZZZZZ/keys",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad_name = app.post("/v1/keys", &first, json!({"name": ""})).await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The admin may revoke a tenant's last keys (a leak with no key left to rotate from).
    for id in key_ids(&app, &first).await {
        let reply = app
            .call(
                Method::DELETE,
                &format!("/v1/tenants/{tenant}/keys/{id}"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    for key in [&first, &second] {
        assert_eq!(
            app.get("/v1/channels", key).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Concurrent key creations cannot pass `max_api_keys` (the count and the insert hold the
/// tenant row: exact on Postgres too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_creations_hold_the_cap() {
    let app = TestApp::spawn_with(|c| c.quotas.max_api_keys = 4).await;
    let first = app.tenant("acme").await;
    let requests = (0..20).map(|_| app.post("/v1/keys", &first, json!({})));
    let replies = futures_util::future::join_all(requests).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.code() == "quota_exceeded")
        .count();
    assert_eq!(
        (created, refused),
        (3, 17),
        "the first key plus 3 reach the cap"
    );
    let active = app
        .raw_strings("SELECT id FROM api_keys WHERE revoked_at IS NULL")
        .await;
    assert_eq!(active.len(), 4);
}
