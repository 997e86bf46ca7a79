//! Subscribers: single PUT/DELETE, listing with cursors, batch import, address rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{addresses, TestApp, CHECKSUMMED};

#[tokio::test]
async fn put_is_idempotent_and_delete_reactivates_on_put() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let path = format!("/v1/channels/{ch}/subscribers/{CHECKSUMMED}");

    let first = app.call(Method::PUT, &path, Some(&key), None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        first.body["address"],
        CHECKSUMMED.to_lowercase(),
        "stored normalized"
    );
    let second = app.call(Method::PUT, &path, Some(&key), None).await;
    assert_eq!(second.status, StatusCode::OK);
    // Lowercase form is the same subscriber.
    let lower_path = format!(
        "/v1/channels/{ch}/subscribers/{}",
        CHECKSUMMED.to_lowercase()
    );
    let lower = app.call(Method::PUT, &lower_path, Some(&key), None).await;
    assert_eq!(lower.status, StatusCode::OK);

    let list = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    let gone = app.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let gone_again = app.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(gone_again.status, StatusCode::NO_CONTENT);
    let list = app
        .get(&format!("/v1/channels/{ch}/subscribers"), &key)
        .await;
    assert!(list.body["items"].as_array().unwrap().is_empty());

    let back = app.call(Method::PUT, &path, Some(&key), None).await;
    assert_eq!(back.status, StatusCode::CREATED, "re-PUT reactivates");
}

#[tokio::test]
async fn addresses_must_be_well_formed_and_checksums_valid() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let bad_checksum = CHECKSUMMED.replace("aAeb", "AAeb");
    for bad in [
        bad_checksum.as_str(),
        "0x1234",
        "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0xZZaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    ] {
        let reply = app
            .call(
                Method::PUT,
                &format!("/v1/channels/{ch}/subscribers/{bad}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_address"),
            "{bad}"
        );
    }
    let upper = format!("0x{}", CHECKSUMMED[2..].to_uppercase());
    let reply = app
        .call(
            Method::PUT,
            &format!("/v1/channels/{ch}/subscribers/{upper}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "all-uppercase carries no checksum"
    );
}

#[tokio::test]
async fn batch_reports_added_already_and_invalid() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let mut list = addresses(1, 3);
    app.subscribe(&key, &ch, &list[..1]).await;
    list.push(list[1].clone()); // duplicate within the request
    list.push("0xnothex".to_owned());
    list.push(CHECKSUMMED.replace("aAeb", "AAeb"));
    let reply = app
        .post(
            &format!("/v1/channels/{ch}/subscribers/batch"),
            &key,
            json!({ "addresses": list }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["added"], 2);
    assert_eq!(reply.body["already"], 2);
    let invalid = reply.body["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 2);
    assert_eq!(invalid[0]["reason"], "malformed");
    assert_eq!(invalid[1]["reason"], "bad_checksum");
}

#[tokio::test]
async fn batch_accepts_ten_thousand_and_rejects_more() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let path = format!("/v1/channels/{ch}/subscribers/batch");
    let too_many = app
        .post(&path, &key, json!({ "addresses": addresses(2, 10_001) }))
        .await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_addresses")
    );
    let ok = app
        .post(&path, &key, json!({ "addresses": addresses(2, 10_000) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["added"], 10_000);
}

#[tokio::test]
async fn subscriber_list_paginates_by_address() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let all = addresses(3, 25);
    app.subscribe(&key, &ch, &all).await;
    let mut seen = Vec::new();
    let mut path = format!("/v1/channels/{ch}/subscribers?limit=10");
    loop {
        let page = app.get(&path, &key).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["address"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => path = format!("/v1/channels/{ch}/subscribers?limit=10&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
}
