//! The pages' HTTP side without a browser: page and asset responses with their security
//! headers, the channel's subscribe links, and the public endpoints the subscribe page calls
//! (profile, XMTP reachability, the subscriber session's own topic preferences).

use reqwest::{Method, StatusCode};
use serde_json::json;
use xmtp_client::Wallet;

use crate::helpers::*;
use crate::siwe::{challenge, submit};

async fn raw(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_are_served_with_a_same_origin_policy_and_configurable_framing() {
    let app = TestApp::spawn_with(|c| {
        c.pages.frame_ancestors = "https://dapp.example https://docs.example".into();
    })
    .await;
    let page = raw(&app, "/subscribe/ch_whatever").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(
        csp.ends_with("frame-ancestors https://dapp.example https://docs.example"),
        "{csp}"
    );
    assert_eq!(header(&page, "x-frame-options"), "");
    let html = page.text().await.unwrap();
    assert!(html.contains("/pages/subscribe.js"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no absolute URL: {html}"
    );

    let console = raw(&app, "/console").await;
    assert_eq!(console.status(), StatusCode::OK);
    assert!(header(&console, "content-security-policy").ends_with("frame-ancestors 'none'"));
    assert_eq!(header(&console, "x-frame-options"), "DENY");

    for (name, kind) in [
        ("subscribe.js", "text/javascript"),
        ("console.js", "text/javascript"),
        ("pages.css", "text/css"),
    ] {
        let asset = raw(&app, &format!("/pages/{name}")).await;
        assert_eq!(asset.status(), StatusCode::OK, "{name}");
        assert!(header(&asset, "content-type").starts_with(kind), "{name}");
        assert_eq!(header(&asset, "x-content-type-options"), "nosniff");
    }
    let missing = raw(&app, "/pages/other.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_can_be_turned_off() {
    let app = TestApp::spawn_with(|c| c.pages.enabled = false).await;
    for path in ["/console", "/subscribe/ch_x", "/pages/pages.css"] {
        assert_eq!(
            raw(&app, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_channel_links_its_subscribe_page_and_shows_a_public_profile() {
    let app = TestApp::spawn_with(|c| {
        c.selfservice.siwe_uri = "https://herald.example/".into();
    })
    .await;
    let key = app.tenant("acme").await;
    let created = app
        .post(
            "/v1/channels",
            &key,
            json!({"name": "Alerts \"beta\" <b>", "description": "What breaks"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let ch = created.body["id"].as_str().unwrap().to_owned();
    let url = format!("https://herald.example/subscribe/{ch}");
    assert_eq!(created.body["subscribe_url"], url.as_str());
    let embed = created.body["subscribe_embed"].as_str().unwrap();
    assert!(
        embed.starts_with(&format!("<iframe src=\"{url}\"")),
        "{embed}"
    );
    assert!(
        embed.contains("title=\"Subscribe to Alerts &quot;beta&quot; &lt;b>\""),
        "{embed}"
    );
    let read = app.get(&format!("/v1/channels/{ch}"), &key).await;
    assert_eq!(read.body["subscribe_url"], url.as_str());

    app.topic(
        &key,
        &ch,
        json!({"name": "security", "description": "Incidents", "default": "required"}),
    )
    .await;
    let profile = app
        .call(
            Method::GET,
            &format!("/v1/channels/{ch}/profile"),
            None,
            None,
        )
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert_eq!(profile.body["name"], "Alerts \"beta\" <b>");
    assert_eq!(profile.body["description"], "What breaks");
    assert_eq!(
        profile.body["xmtp_address"],
        created.body["xmtp"]["address"]
    );
    assert_eq!(
        profile.body["topics"],
        json!([{"name": "security", "description": "Incidents", "default": "required"}])
    );
    assert_eq!(profile.body["subscribe_url"], url.as_str());
    let gone = app
        .call(
            Method::GET,
            "/v1/channels/ch_01M00000000000000000000000/profile",
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

#[tokio::test]
async fn reachability_asks_the_network_whether_an_address_has_an_inbox() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    // The channel registered its own wallet on the network at creation.
    let own = app.get(&format!("/v1/channels/{ch}"), &key).await.body["xmtp"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = |a: &str| format!("/v1/channels/{ch}/reachability?address={a}");
    let yes = app.call(Method::GET, &path(&own), None, None).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.body);
    assert_eq!(
        yes.body,
        json!({"address": own.to_lowercase(), "on_xmtp": true})
    );
    let stranger = Wallet::generate().address();
    let no = app.call(Method::GET, &path(&stranger), None, None).await;
    assert_eq!(no.body["on_xmtp"], false, "{}", no.body);
    let bad = app.call(Method::GET, &path("0x12"), None, None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.code(), "invalid_address");
}

#[tokio::test]
async fn a_subscriber_session_reaches_only_its_own_preferences_on_its_channel() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let other = app.channel(&key, "other").await;
    app.topic(&key, &ch, json!({"name": "security"})).await;
    app.topic(&key, &ch, json!({"name": "core", "default": "required"}))
        .await;
    let wallet = Wallet::generate();
    let address = wallet.address().to_lowercase();
    let message = challenge(&app, &ch, &address).await;
    let ok = submit(&app, &ch, &message, &wallet.sign_personal(&message)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let token = ok.body["session_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hsub."), "{token}");
    assert!(ok.body["session_expires_at"].is_string());

    let mine = app
        .get(&format!("/v1/channels/{ch}/me/topics"), &token)
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["address"], address.as_str());
    assert_eq!(
        mine.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        mine.body
    );

    let put = |topic: &str, enabled: bool, token: &str| {
        let path = format!("/v1/channels/{ch}/me/topics/{topic}");
        let token = token.to_owned();
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({"enabled": enabled})),
            )
            .await
        }
    };
    assert_eq!(
        put("security", false, &token).await.status,
        StatusCode::NO_CONTENT
    );
    let required = put("core", false, &token).await;
    assert_eq!(required.status, StatusCode::CONFLICT);
    assert_eq!(required.code(), "topic_required");
    assert_eq!(
        put("nope", false, &token).await.status,
        StatusCode::NOT_FOUND
    );
    // The tenant's view agrees, and the change is logged as the wallet's own.
    let prefs = app
        .get(
            &format!("/v1/channels/{ch}/subscribers/{address}/topics"),
            &key,
        )
        .await;
    let security = prefs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == "security")
        .unwrap()
        .clone();
    assert_eq!(security["enabled"], false, "{security}");
    let consent = app
        .get(
            &format!("/v1/channels/{ch}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    let last = consent.body["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["action"].as_str(), last["source"].as_str()),
        (Some("topic_off"), Some("signature"))
    );
    assert!(
        !last["evidence"].as_str().unwrap().contains(&token),
        "the token is not logged"
    );

    // Not for another channel, not forged, not a tenant key.
    let foreign = app
        .get(&format!("/v1/channels/{other}/me/topics"), &token)
        .await;
    assert_eq!(foreign.status, StatusCode::UNAUTHORIZED, "{}", foreign.body);
    let forged = token.replacen(&address, "0x0000000000000000000000000000000000000001", 1);
    assert_eq!(
        app.get(&format!("/v1/channels/{ch}/me/topics"), &forged)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&format!("/v1/channels/{ch}/me/topics"), &key)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_subscriber_count_is_per_channel_and_per_tenant() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let ch = app.channel(&key, "alerts").await;
    let quiet = app.channel(&key, "quiet").await;
    app.subscribe(&key, &ch, &addresses(41, 5)).await;
    app.subscribe(&key, &quiet, &addresses(42, 2)).await;
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{ch}/subscribers/{}", addresses(41, 1)[0]),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let count = app
        .get(&format!("/v1/channels/{ch}/subscribers/count"), &key)
        .await;
    assert_eq!(count.body, json!({"active": 4}));
    let foreign = app
        .get(&format!("/v1/channels/{ch}/subscribers/count"), &other)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}
