//! Wallet-signature (SIWE) subscribe: the happy path and every refusal.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use xmtp_client::Wallet;

use crate::helpers::{Reply, TestApp};

pub async fn challenge(app: &TestApp, ch: &str, address: &str) -> String {
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

pub async fn submit(app: &TestApp, ch: &str, message: &str, signature: &[u8]) -> Reply {
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

/// A GET of a challenge as client `ip` (through the trusted forwarding header).
async fn challenge_as(app: &TestApp, ch: &str, address: &str, ip: Option<&str>) -> Reply {
    let url = app.url(&format!(
        "/v1/channels/{ch}/subscribe-challenge?address={address}"
    ));
    let mut request = app.client.get(url);
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", format!("6.6.6.6, {ip}"));
    }
    crate::helpers::send(request).await
}

#[tokio::test]
async fn a_signature_over_any_other_text_is_refused_even_with_the_issued_nonce() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let wallet = Wallet::generate();
    let message = challenge(&app, &ch, &wallet.address()).await;

    // What the outside probe got subscribed: same domain, address, nonce, channel and expiry,
    // but another URI, another chain and a rewritten statement, all signed by the wallet.
    let statement = message.lines().nth(3).unwrap().to_owned();
    let uri = message.lines().find(|l| l.starts_with("URI: ")).unwrap();
    for edited in [
        message.replace(uri, "URI: https://coolgame.example"),
        message.replace("Chain ID: 1\n", "Chain ID: 137\n"),
        message.replace(&statement, "Sign in to CoolGame (no subscription)."),
    ] {
        assert_ne!(edited, message);
        let reply = submit(&app, &ch, &edited, &wallet.sign_personal(&edited)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.code(), "siwe_message_mismatch");
    }
    let listed = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert!(items(&listed).is_empty());

    // The refusals did not spend the nonce: the issued text still subscribes, once, and is
    // what the consent log keeps.
    let ok = submit(&app, &ch, &message, &wallet.sign_personal(&message)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let consent = app
        .get(
            &format!("/v1/channels/{ch}/subscribers/{}/consent", wallet.address()),
            &key,
        )
        .await;
    let entries = consent.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let evidence: Value = serde_json::from_str(entries[0]["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["message"], message);
}

#[tokio::test]
async fn challenges_issued_before_texts_were_stored_are_compared_with_their_rebuilt_text() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let (alice, bob) = (Wallet::generate(), Wallet::generate());
    let for_alice = challenge(&app, &ch, &alice.address()).await;
    let for_bob = challenge(&app, &ch, &bob.address()).await;
    // Rows as migration 0008 leaves them: no stored text.
    let cleared = app
        .raw_strings("UPDATE siwe_nonces SET message = NULL RETURNING nonce")
        .await;
    assert_eq!(cleared.len(), 2);

    let ok = submit(&app, &ch, &for_alice, &alice.sign_personal(&for_alice)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let edited = for_bob.replace("Chain ID: 1\n", "Chain ID: 137\n");
    let refused = submit(&app, &ch, &edited, &bob.sign_personal(&edited)).await;
    assert_eq!(refused.code(), "siwe_message_mismatch", "{}", refused.body);
    // Another wallet presenting bob's nonce in a text of its own is refused too.
    let carol = Wallet::generate();
    let bob_line = for_bob.lines().nth(1).unwrap();
    let carol_line = herald::domain::Address::parse(&carol.address())
        .unwrap()
        .to_checksum();
    let stolen = for_bob.replace(bob_line, &carol_line);
    assert_ne!(stolen, for_bob);
    let refused = submit(&app, &ch, &stolen, &carol.sign_personal(&stolen)).await;
    assert_eq!(refused.code(), "siwe_channel_mismatch", "{}", refused.body);
    let listed = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert_eq!(items(&listed).len(), 1);
    // Neither refusal spent bob's challenge: his issued text still subscribes him, once.
    let unused = app
        .raw_strings("SELECT nonce FROM siwe_nonces WHERE used_at IS NULL")
        .await;
    assert_eq!(unused.len(), 1, "bob's challenge is unused");
    let ok = submit(&app, &ch, &for_bob, &bob.sign_personal(&for_bob)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let again = submit(&app, &ch, &for_bob, &bob.sign_personal(&for_bob)).await;
    assert_eq!(again.code(), "nonce_already_used", "{}", again.body);
}

#[tokio::test]
async fn public_requests_are_limited_per_client_not_per_channel() {
    let app = TestApp::spawn_with(|c| {
        c.selfservice.public_requests_per_minute = 1;
        c.selfservice.public_burst = 3;
        c.selfservice.client_ip_header = "x-forwarded-for".into();
    })
    .await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let address = Wallet::generate().address();

    // The flooding client (here the connection's own peer address, no header) runs dry…
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(challenge_as(&app, &ch, &address, None).await);
    }
    assert!(statuses[..3].iter().all(|r| r.status == StatusCode::OK));
    let limited = &statuses[3];
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "client_rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    // … and so does the same client on the subscribe endpoint,
    let post = submit(&app, &ch, "x", &[0u8; 65]).await;
    assert_eq!(post.code(), "client_rate_limited");
    // while other subscribers of the same channel are served: one behind the trusted proxy,
    // and one connecting from another loopback address (the peer address keys the limit).
    let other = Wallet::generate().address();
    let served = challenge_as(&app, &ch, &other, Some("10.0.0.2")).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    let neighbour = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let url = app.url(&format!(
        "/v1/channels/{ch}/subscribe-challenge?address={other}"
    ));
    let served = crate::helpers::send(neighbour.get(url)).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    let metrics = herald::telemetry::metrics_handle().render();
    assert!(
        metrics.contains("herald_limited_requests_total{limit=\"public_client\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_address_gets_its_open_challenge_again_and_a_channel_caps_unused_ones() {
    let app = TestApp::spawn_with(|c| {
        c.selfservice.max_outstanding_challenges = 3;
        c.selfservice.client_ip_header = "x-forwarded-for".into();
    })
    .await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let other = app.channel(&key, "other").await;
    let wallets: Vec<Wallet> = (0..4).map(|_| Wallet::generate()).collect();

    let first = challenge(&app, &ch, &wallets[0].address()).await;
    for _ in 0..5 {
        assert_eq!(challenge(&app, &ch, &wallets[0].address()).await, first);
    }
    challenge(&app, &ch, &wallets[1].address()).await;
    challenge(&app, &ch, &wallets[2].address()).await;
    let refused = challenge_as(&app, &ch, &wallets[3].address(), Some("10.9.9.9")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code(), "too_many_challenges");
    assert!(refused.headers.contains_key("retry-after"));
    let rows = app.raw_strings("SELECT nonce FROM siwe_nonces").await;
    assert_eq!(
        rows.len(),
        3,
        "refused and repeated requests stored nothing"
    );
    // The cap is per channel, and answering a challenge frees its place.
    challenge(&app, &other, &wallets[3].address()).await;
    let ok = submit(&app, &ch, &first, &wallets[0].sign_personal(&first)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    challenge(&app, &ch, &wallets[3].address()).await;
}

/// Concurrent challenge requests cannot pass the channel's cap, nor give one address two
/// open challenges (the check and the insert hold the channel row: exact on Postgres too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_challenges_hold_the_channel_cap_and_one_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.selfservice.max_outstanding_challenges = 3;
        c.selfservice.client_ip_header = "x-forwarded-for".into();
    })
    .await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let requests = (0..24).map(|i| {
        let (app, ch) = (&app, &ch);
        async move {
            let address = Wallet::generate().address();
            challenge_as(app, ch, &address, Some(&format!("10.1.0.{i}"))).await
        }
    });
    let replies = futures_util::future::join_all(requests).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let full = replies
        .iter()
        .filter(|r| r.code() == "too_many_challenges")
        .count();
    assert_eq!((ok, full), (3, 21), "exactly the cap is issued");
    let rows = app.raw_strings("SELECT nonce FROM siwe_nonces").await;
    assert_eq!(rows.len(), 3);

    // One address asking many times at once gets one challenge.
    let other = app.channel(&key, "other").await;
    let address = Wallet::generate().address();
    let requests = (0..16).map(|i| {
        let (app, other, address) = (&app, &other, &address);
        async move { challenge_as(app, other, address, Some(&format!("10.2.0.{i}"))).await }
    });
    let replies = futures_util::future::join_all(requests).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let nonces: std::collections::HashSet<&str> = replies
        .iter()
        .map(|r| r.body["nonce"].as_str().unwrap())
        .collect();
    assert_eq!(nonces.len(), 1, "{nonces:?}");
    let rows = app.raw_strings("SELECT nonce FROM siwe_nonces").await;
    assert_eq!(rows.len(), 4);
}
