//! Rich content: markdown, transaction references and links, checked at the API and read by
//! the official SDK 6.0.0. The SDK decodes each message natively, the official codec packages
//! (`@xmtp/content-type-markdown`, `@xmtp/content-type-transaction-reference`) decode the raw
//! EncodedContent again, and the fallback a client without the codec shows is the one given.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

const TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";

#[tokio::test]
async fn content_is_checked_and_shown() {
    let app = TestApp::spawn().await;
    let key = app.tenant("rich").await;
    let channel = app.channel(&key, "rich").await;
    app.subscribe(&key, &channel, &addresses(5, 2)).await;
    let path = format!("/v1/channels/{channel}/announcements");
    for (content, code) in [
        (json!({"type": "video"}), "invalid_body"),
        (json!({"type": "markdown", "colour": "red"}), "invalid_body"),
        (
            json!({"type": "transaction_reference", "network_id": 1, "reference": "abc"}),
            "invalid_content",
        ),
        (
            json!({"type": "transaction_reference", "network_id": "mainnet", "reference": TX}),
            "invalid_content",
        ),
        (
            json!({"type": "link", "url": "ftp://x.org"}),
            "invalid_content",
        ),
        (
            json!({"type": "markdown", "fallback": " "}),
            "invalid_content",
        ),
    ] {
        let r = app
            .post(&path, &key, json!({"text": "t", "content": content}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content}: {}",
            r.body
        );
        assert_eq!(r.code(), code, "{content}: {}", r.body);
    }
    let r = app
        .post(
            &path,
            &key,
            json!({"text": "Sent", "content": {"type": "transaction_reference", "namespace": "eip155", "network_id": 8453, "reference": TX}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/announcements/{id}"), &key).await.body;
    assert_eq!(
        got["content"],
        json!({"type": "transaction_reference", "namespace": "eip155", "network_id": "8453", "reference": TX, "metadata": null}),
        "{got}"
    );
    let plain = app.post(&path, &key, json!({"text": "plain"})).await.body;
    assert_eq!(plain["content"], json!({"type": "text"}), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_decodes_markdown_and_transaction_references_with_fallbacks() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 2).await;
    let key = app.tenant("rich").await;
    let channel = app.channel(&key, "rich").await;
    let sender = app.get(&format!("/v1/channels/{channel}"), &key).await.body["xmtp"]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sdk = Sdk::start().await;
    let k: [u8; 32] = rand::random();
    let user = sdk
        .create("reader", &format!("0x{}", hex::encode(k)), &app.xmtp_url)
        .await;
    app.subscribe(&key, &channel, &[user.address.to_lowercase()])
        .await;

    let markdown = "## Proposal 42\n\n**Voting closes** in 24 h: [vote](https://dao.example/42)";
    let bodies = [
        json!({"text": markdown, "content": {"type": "markdown", "fallback": "Proposal 42: voting closes in 24 h"}}),
        json!({"text": "You received 100 USDC", "content": {
            "type": "transaction_reference", "namespace": "eip155", "network_id": 1, "reference": TX,
            "metadata": {"transaction_type": "transfer", "currency": "USDC", "amount": 100000000.0,
                         "decimals": 6, "from_address": "0x1111111111111111111111111111111111111111",
                         "to_address": "0x2222222222222222222222222222222222222222"}}}),
        json!({"text": "Vote on proposal 42", "content": {"type": "link", "url": "https://dao.example/42"}}),
    ];
    for body in bodies {
        let r = app
            .post(&format!("/v1/channels/{channel}/announcements"), &key, body)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let done = wait_completed(&app, &key, r.body["id"].as_str().unwrap()).await;
        assert_eq!(done["counts"]["delivered"], 1, "{done}");
    }

    let dm = sdk
        .find_dm_of(&user.name, &sender)
        .await
        .expect("the SDK sees herald's DM");
    let got = sdk
        .call("contents", json!({"name": user.name, "conversationId": dm}))
        .await;
    let all = got.as_array().unwrap();
    let find = |t: &str| -> &Value {
        all.iter()
            .find(|m| m["rawType"] == t)
            .unwrap_or_else(|| panic!("no {t} message: {got}"))
    };

    let md = find("xmtp.org/markdown");
    assert_eq!(md["contentType"], "xmtp.org/markdown", "{md}");
    assert_eq!(md["sdkContent"], markdown, "{md}");
    assert_eq!(md["official"], markdown, "{md}");
    assert_eq!(
        md["rawFallback"], "Proposal 42: voting closes in 24 h",
        "{md}"
    );
    assert_eq!(md["sdkFallback"], md["rawFallback"], "{md}");

    let tx = find("xmtp.org/transactionReference");
    assert_eq!(tx["contentType"], "xmtp.org/transactionReference", "{tx}");
    let official = &tx["official"];
    assert_eq!(official["reference"], TX, "{tx}");
    assert_eq!(official["namespace"], "eip155", "{tx}");
    assert_eq!(official["networkId"], "1", "{tx}");
    assert_eq!(official["metadata"]["currency"], "USDC", "{tx}");
    assert_eq!(official["metadata"]["decimals"], 6, "{tx}");
    assert_eq!(official["metadata"]["transactionType"], "transfer", "{tx}");
    assert_eq!(
        official["metadata"]["toAddress"], "0x2222222222222222222222222222222222222222",
        "{tx}"
    );
    assert_eq!(
        tx["sdkContent"]["reference"], TX,
        "the SDK's own decoding: {tx}"
    );
    assert_eq!(tx["rawFallback"], "You received 100 USDC", "{tx}");
    assert_eq!(tx["sdkFallback"], tx["rawFallback"], "{tx}");

    let link = find("xmtp.org/text");
    assert_eq!(
        link["sdkContent"], "Vote on proposal 42\nhttps://dao.example/42",
        "{link}"
    );
    sdk.shutdown().await;
}
