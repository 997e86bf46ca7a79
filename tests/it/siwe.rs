//! Wallet-signature (SIWE) subscribe: the happy path and every refusal.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use xmtp_client::Wallet;

use crate::helpers::{Reply, TestApp};

async fn challenge(app: &TestApp, ch: &str, address: &str) -> String {
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/channels/{ch}/subscribe-challenge?address={address}"),
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["message"].as_str().unwrap().to_owned()
}

async fn submit(app: &TestApp, ch: &str, message: &str, signature: &[u8]) -> Reply {
    let body = json!({"message": message, "signature": format!("0x{}", hex::encode(signature))});
    app.call(
        Method::POST,
        &format!("/v1/channels/{ch}/subscriptions"),
        None,
        Some(body),
    )
    .await
}

fn items(reply: &Reply) -> &Vec<Value> {
    reply.body["items"].as_array().unwrap()
}

#[tokio::test]
async fn a_signed_challenge_subscribes_once_and_is_logged_as_evidence() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let wallet = Wallet::generate();
    let address = wallet.address();

    let message = challenge(&app, &ch, &address).await;
    assert!(
        message.contains(&format!("herald:channel:{ch}")),
        "{message}"
    );
    assert!(message.starts_with("localhost:8080 wants you to sign in"));
    let signature = wallet.sign_personal(&message);
    let ok = submit(&app, &ch, &message, &signature).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["address"], address.to_lowercase());

    let listed = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert_eq!(items(&listed).len(), 1);

    // Replaying the same signed challenge is refused.
    let replay = submit(&app, &ch, &message, &signature).await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert_eq!(replay.code(), "nonce_already_used");

    let consent = app
        .get(
            &format!("/v1/channels/{ch}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert_eq!(consent.body["status"], "active");
    let entries = consent.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["source"], "signature");
    assert_eq!(entries[0]["action"], "subscribe");
    let evidence: Value = serde_json::from_str(entries[0]["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["message"], message);
}

#[tokio::test]
async fn expired_foreign_forged_and_unknown_challenges_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let other = app.channel(&key, "other").await;
    let wallet = Wallet::generate();
    let address = wallet.address();
    let message = challenge(&app, &ch, &address).await;

    // Signed by another wallet.
    let intruder = Wallet::generate();
    let forged = submit(&app, &ch, &message, &intruder.sign_personal(&message)).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(forged.code(), "signer_mismatch");

    // A valid signature presented to another channel.
    let signature = wallet.sign_personal(&message);
    let foreign = submit(&app, &other, &message, &signature).await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(foreign.code(), "siwe_channel_mismatch");

    // Expired (the signer signed an expiry in the past).
    let expiry_line = message
        .lines()
        .find(|l| l.starts_with("Expiration Time: "))
        .unwrap();
    let expired = message.replace(expiry_line, "Expiration Time: 2020-01-01T00:00:00Z");
    let late = submit(&app, &ch, &expired, &wallet.sign_personal(&expired)).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(late.code(), "challenge_expired");

    // A nonce herald never issued.
    let nonce_line = message.lines().find(|l| l.starts_with("Nonce: ")).unwrap();
    let invented = message.replace(nonce_line, "Nonce: inventedNonce123");
    let unknown = submit(&app, &ch, &invented, &wallet.sign_personal(&invented)).await;
    assert_eq!(unknown.code(), "unknown_nonce");

    // Another server's domain, and garbage.
    let elsewhere = message.replacen("localhost:8080", "evil.example", 1);
    let wrong = submit(&app, &ch, &elsewhere, &wallet.sign_personal(&elsewhere)).await;
    assert_eq!(wrong.code(), "siwe_domain_mismatch");
    let junk = submit(&app, &ch, "hello", &signature).await;
    assert_eq!(junk.code(), "invalid_siwe_message");
    let bad_sig = submit(&app, &ch, &message, &[1u8; 10]).await;
    assert_eq!(bad_sig.code(), "invalid_signature");

    // None of that subscribed anyone, and the genuine challenge still works once.
    let listed = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert!(items(&listed).is_empty());
    let ok = submit(&app, &ch, &message, &signature).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

#[tokio::test]
async fn challenges_need_a_live_channel_and_a_valid_address() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let bad = app
        .call(
            Method::GET,
            &format!("/v1/channels/{ch}/subscribe-challenge?address=0x12"),
            None,
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = app
        .call(
            Method::GET,
            "/v1/channels/ch_01HZZZZZZZZZZZZZZZZZZZZZZZ/subscribe-challenge?address=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            None,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn public_endpoints_are_rate_limited_per_channel() {
    let app = TestApp::spawn_with(|c| c.http.rate_limit_per_second = 1).await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let address = Wallet::generate().address();
    let path = format!("/v1/channels/{ch}/subscribe-challenge?address={address}");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.call(Method::GET, &path, None, None).await.status);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
