//! Findings of the outside attacker probe (issue 20), each as a regression test: template
//! bombs, JSON strictness, control characters in text (a Postgres 500 before), garbage cursors,
//! echoed input, and error bodies written outside our handlers.

use herald::chain::ChainConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{send, Reply, TestApp, ADMIN_TOKEN};

const CHAIN: u64 = 8;
const POOL: &str = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640";
const TRANSFER: &str = "Transfer(address indexed from, address indexed to, uint256 value)";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.chains = vec![ChainConfig::new(
            CHAIN,
            "testnet",
            vec!["http://127.0.0.1:9".into()],
        )]
    })
    .await
}

/// The probe's template: loops rebinding a string to itself doubled, `depth` deep.
fn bomb(depth: usize) -> String {
    let mut source = String::from("{% for s in ['ab'] %}");
    for _ in 0..depth {
        source.push_str("{% for s in [s ~ s] %}");
    }
    source.push_str("{{ s | length }}");
    for _ in 0..=depth {
        source.push_str("{% endfor %}");
    }
    source
}

fn trigger(template: &str) -> Value {
    json!({"chain_id": CHAIN, "address": POOL, "event": TRANSFER, "template": template})
}

/// Sends `body` as the raw bytes of a JSON request.
async fn raw_json(app: &TestApp, method: Method, path: &str, key: &str, body: &str) -> Reply {
    send(
        app.client
            .request(method, app.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

#[tokio::test]
async fn template_bombs_are_refused_and_the_server_stays_up() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    let path = format!("/v1/channels/{ch}/triggers");
    for depth in [20, 26, 28] {
        let reply = app.post(&path, &key, trigger(&bomb(depth))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{depth}");
        assert_eq!(reply.code(), "invalid_trigger");
        assert_eq!(reply.body["errors"][0]["field"], "template");
        assert_eq!(
            reply.body["errors"][0]["code"],
            "template_forbidden_construct"
        );
    }
    // Editing an existing trigger into a bomb is refused the same way.
    let ok = app
        .post(
            &path,
            &key,
            trigger("{{ args.value | units(18) }} from {{ args.from | short }}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let edit = app
        .call(
            Method::PATCH,
            &format!("{path}/{}", ok.body["id"].as_str().unwrap()),
            Some(&key),
            Some(json!({"template": bomb(28)})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(edit.body["errors"][0]["field"], "template");
    let health = send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn json_bodies_must_be_objects_without_repeated_keys() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let path = format!("/v1/channels/{ch}");

    let reply = raw_json(&app, Method::PATCH, &path, &key, r#"["renamed","d"]"#).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "invalid_body");
    let reply = raw_json(
        &app,
        Method::PATCH,
        &path,
        &key,
        r#"{"name":"a","name":"b"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "duplicate_key");
    assert!(reply.body["detail"].as_str().unwrap().contains("`name`"));
    // Bodies read as free-form JSON (triggers, conditions) are held to the same rule.
    let body = format!(
        r#"{{"chain_id":{CHAIN},"address":"{POOL}","event":"{TRANSFER}","template":"x","condition":{{"arg":"value","arg":"from","op":"==","value":"1"}}}}"#
    );
    let reply = raw_json(&app, Method::POST, &format!("{path}/triggers"), &key, &body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "duplicate_key");
    assert!(reply.body["detail"]
        .as_str()
        .unwrap()
        .contains("condition.arg"));
    // Nothing was renamed.
    let channel = app.get(&path, &key).await;
    assert_eq!(channel.body["name"], "news");
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_input() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let nul = "a\u{0}b";
    let cases: Vec<(Method, String, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/v1/channels".into(),
            key.as_str(),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/v1/channels/{ch}"),
            &key,
            json!({"description": nul}),
            "description",
        ),
        (
            Method::POST,
            format!("/v1/channels/{ch}/announcements"),
            &key,
            json!({"text": nul}),
            "text",
        ),
        (
            Method::PUT,
            format!("/v1/channels/{ch}/welcome"),
            &key,
            json!({"text": "hi\u{1b}[31m"}),
            "text",
        ),
        (
            Method::POST,
            format!("/v1/channels/{ch}/topics"),
            &key,
            json!({"name": "drops", "description": nul}),
            "description",
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            ADMIN_TOKEN,
            json!({"name": nul}),
            "name",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let reply = app
            .call(method.clone(), &path, Some(token), Some(body))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "control_character");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{field}`")), "{detail}");
    }
    // Encoded in a cursor or a path segment, they never reach the database either.
    for path in [
        "/v1/channels?cursor=ch_%00".to_owned(),
        format!("/v1/channels/{ch}/subscribers?cursor=%00"),
        format!("/v1/channels/{ch}/triggers?cursor=a%00"),
        format!("/v1/channels/{ch}/consent?cursor=%00"),
        format!("/v1/channels/{ch}/topics/a%00b"),
    ] {
        let reply = app.get(&path, &key).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.code(), "control_character", "{path}");
    }
    // Tabs and newlines are text, not control.
    let fine = app
        .post(
            &format!("/v1/channels/{ch}/announcements"),
            &key,
            json!({"text": "line one\n\tline two"}),
        )
        .await;
    assert!(fine.status.is_success(), "{}", fine.body);
}

#[tokio::test]
async fn garbage_cursors_are_refused() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let ann = app
        .post_announcement(&key, &ch, json!({"text": "hello"}))
        .await;
    let ann = ann.body["id"].as_str().unwrap().to_owned();
    for path in [
        "/v1/channels?cursor=garbage".to_owned(),
        format!("/v1/channels/{ch}/subscribers?cursor=garbage"),
        format!("/v1/channels/{ch}/triggers?cursor=garbage"),
        format!("/v1/channels/{ch}/consent?cursor=garbage"),
        format!("/v1/announcements/{ann}/deliveries?cursor=garbage"),
    ] {
        let reply = app.get(&path, &key).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.code(), "invalid_cursor", "{path}");
    }
    // Real cursors still page.
    for name in ["b", "c"] {
        app.channel(&key, name).await;
    }
    let first = app.get("/v1/channels?limit=1", &key).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let next = app
        .get(&format!("/v1/channels?limit=1&cursor={cursor}"), &key)
        .await;
    assert_eq!(next.status, StatusCode::OK);
    assert_ne!(next.body["items"][0]["id"], first.body["items"][0]["id"]);
}

#[tokio::test]
async fn echoed_input_is_clipped() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let digits = "9".repeat(900_000);
    let body = json!({
        "chain_id": CHAIN, "address": POOL, "event": TRANSFER, "template": "x",
        "condition": {"arg": "value", "op": ">", "value": digits},
    });
    let reply = app
        .post(&format!("/v1/channels/{ch}/triggers"), &key, body)
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = reply.body.to_string();
    assert!(text.len() < 2_000, "{} bytes", text.len());
    // serde quotes strings in type errors; those are clipped too.
    let long = "x".repeat(100_000);
    let reply = app
        .post(
            "/v1/channels",
            &key,
            json!({"name": ["a"], "description": long}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.to_string().len() < 1_000);
    let reply = app.post("/v1/channels", &key, json!({"name": long})).await;
    assert!(reply.status.is_client_error());
    assert!(reply.body.to_string().len() < 1_000);
}

#[tokio::test]
async fn errors_from_outside_the_handlers_are_json_too() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let cases = [
        // 405 from routing.
        (
            app.client.put(app.url("/v1/channels")).bearer_auth(&key),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        // 415: a body not declared as JSON.
        (
            app.client
                .post(app.url("/v1/channels"))
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body(r#"{"name":"x"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        // 400: malformed JSON.
        (
            app.client
                .post(app.url("/v1/channels"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body("{"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        // 400: a query string of the wrong shape.
        (
            app.client
                .get(app.url("/v1/channels?limit=many"))
                .bearer_auth(&key),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // 400: a path segment that is not UTF-8 (axum's path rejection).
        (
            app.client
                .delete(app.url(&format!("/v1/channels/{ch}/topics/%FF")))
                .bearer_auth(&key),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // 404 for an unknown route.
        (
            app.client.get(app.url("/nope")).bearer_auth(&key),
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
    ];
    for (request, status, code) in cases {
        let reply = send(request).await;
        assert_eq!(reply.status, status, "{code}: {}", reply.body);
        assert_eq!(reply.code(), code);
        assert!(reply.body["detail"].is_string(), "{code}");
    }
}

#[tokio::test]
async fn trigger_limits_count_every_entry_and_bound_every_number() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    let path = format!("/v1/channels/{ch}/triggers");
    let field_codes = |reply: &Reply| -> Vec<(String, String)> {
        reply.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap().to_owned();
                (s("field"), s("code"))
            })
            .collect()
    };
    let mut body = trigger("{{ args.value }}");
    body["address"] = Value::Null;
    body["addresses"] = json!(vec![POOL; 101]);
    let reply = app.post(&path, &key, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&reply),
        vec![("addresses".into(), "too_many_addresses".into())]
    );

    let params: Vec<String> = (0..20_000).map(|i| format!("uint256 a{i}")).collect();
    let body = json!({
        "chain_id": CHAIN, "address": POOL, "template": "x",
        "event": format!("Big({})", params.join(", ")),
    });
    let reply = app.post(&path, &key, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&reply),
        vec![("event".into(), "event_too_large".into())]
    );
    assert!(reply.body.to_string().len() < 2_000);
    // Short text, too many arguments.
    let params: Vec<String> = (0..65).map(|i| format!("bool a{i}")).collect();
    let mut body = trigger("x");
    body["event"] = json!(format!("E({})", params.join(",")));
    let reply = app.post(&path, &key, body).await;
    assert_eq!(
        field_codes(&reply),
        vec![("event".into(), "event_too_large".into())]
    );

    let mut body = trigger("{{ args.value }}");
    body["from_block"] = json!(u64::MAX);
    let reply = app.post(&path, &key, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&reply),
        vec![("from_block".into(), "invalid_from_block".into())]
    );
    // The largest accepted values are stored and read back.
    let mut body = trigger("{{ args.value }}");
    body["address"] = Value::Null;
    body["addresses"] = json!(crate::helpers::addresses(9, 100));
    body["from_block"] = json!(i64::MAX);
    let reply = app.post(&path, &key, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap();
    let back = app.get(&format!("{path}/{id}"), &key).await;
    assert_eq!(back.body["from_block"], json!(i64::MAX));
    assert_eq!(back.body["addresses"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn nested_objects_cannot_be_given_as_arrays() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "news").await;
    let address = crate::helpers::addresses(3, 1);
    let path = format!("/v1/channels/{ch}/announcements");
    let reply = app
        .post(&path, &key, json!({"text": "hi", "audience": [address]}))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let reply = app
        .post(
            &path,
            &key,
            json!({"text": "hi", "audience": {"addresses": address, "x": []}}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let reply = app
        .post(
            &path,
            &key,
            json!({"text": "hi", "audience": {"addresses": address}}),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}
