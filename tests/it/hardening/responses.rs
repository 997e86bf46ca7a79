//! What comes back: garbage cursors refused, echoed input clipped, JSON error bodies also from
//! outside our handlers, trigger limits counting every entry.

use super::*;

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
