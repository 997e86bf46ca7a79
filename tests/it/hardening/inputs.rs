//! What a request may carry: template bombs refused, JSON bodies strict (objects, no repeated
//! keys, no arrays for objects), control characters refused in every text input.

use super::*;

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
