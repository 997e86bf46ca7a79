//! Channel CRUD and the channel wallet.

use herald::crypto::ChannelWallet;
use herald::domain::Address;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn channel_lifecycle() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;

    let created = app
        .post(
            "/v1/channels",
            &key,
            json!({ "name": "alerts", "description": "ops" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ch_"));
    let address = created.body["xmtp"]["address"].as_str().unwrap();
    let parsed = Address::parse(address).expect("valid address");
    assert_eq!(
        parsed.to_checksum(),
        address,
        "address is EIP-55 checksummed"
    );

    let fetched = app.get(&format!("/v1/channels/{id}"), &key).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["name"], "alerts");
    assert_eq!(fetched.body["description"], "ops");

    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/channels/{id}"),
            Some(&key),
            Some(json!({ "name": "news" })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(
        (
            patched.body["name"].as_str(),
            patched.body["description"].as_str()
        ),
        (Some("news"), Some("ops"))
    );
    let cleared = app
        .call(
            Method::PATCH,
            &format!("/v1/channels/{id}"),
            Some(&key),
            Some(json!({ "description": null })),
        )
        .await;
    assert!(cleared.body["description"].is_null());
    let bad = app
        .call(
            Method::PATCH,
            &format!("/v1/channels/{id}"),
            Some(&key),
            Some(json!({ "name": "" })),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/channels/{id}"), &key).await.status,
        StatusCode::NOT_FOUND
    );
    let again = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::NOT_FOUND, "channel_not_found")
    );
}

#[tokio::test]
async fn channel_list_paginates_in_creation_order() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.channel(&key, &format!("c{i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/channels?limit=2&cursor={c}"),
            None => "/v1/channels?limit=2".to_owned(),
        };
        let page = app.get(&path, &key).await;
        assert_eq!(page.status, StatusCode::OK);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(
        app.get("/v1/channels?limit=0", &key).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/v1/channels?limit=1001", &key).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/v1/channels?limit=abc", &key).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn wallet_key_is_stored_sealed_under_the_master_key() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let created = app
        .post("/v1/channels", &key, json!({ "name": "alerts" }))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let sealed = app
        .raw_bytes("SELECT wallet_key_sealed FROM channels WHERE id = $1", id)
        .await;
    assert_eq!(sealed.len(), 24 + 32 + 16, "nonce + secret + tag");
    let signing = ChannelWallet::open(&app.kek, &sealed, id).expect("opens with the KEK");
    let address = Address::from_public_key(signing.verifying_key());
    assert_eq!(
        address.to_checksum(),
        created.body["xmtp"]["address"].as_str().unwrap()
    );
    assert!(ChannelWallet::open(&herald::crypto::MasterKey::generate(), &sealed, id).is_err());
}

#[tokio::test]
async fn channel_input_is_validated() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let missing = app.post("/v1/channels", &key, json!({})).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    let long = app
        .post(
            "/v1/channels",
            &key,
            json!({ "name": "a", "description": "d".repeat(2001) }),
        )
        .await;
    assert_eq!(
        (long.status, long.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_description")
    );
    let unknown = app
        .post("/v1/channels", &key, json!({ "name": "a", "color": "red" }))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/v1/channels/ch_nonsense", &key).await.status,
        StatusCode::NOT_FOUND
    );
}
