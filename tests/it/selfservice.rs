//! Topics, topic-targeted announcements, the send-time deliverability check, and the consent
//! log of the tenant's own subscriber changes.

use herald::domain::{Address, ChannelId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{addresses, TestApp};

fn list(body: &Value, field: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn topic_announcements_reach_only_opted_in_subscribers_and_send_time_checks_agree() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let people = addresses(7, 3);
    app.subscribe(&key, &ch, &people).await;
    let (a, b, c) = (&people[0], &people[1], &people[2]);

    let topics = format!("/v1/channels/{ch}/topics");
    for (name, default) in [
        ("security", "on"),
        ("marketing", "off"),
        ("legal", "required"),
    ] {
        let made = app
            .post(&topics, &key, json!({"name": name, "default": default}))
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let dup = app.post(&topics, &key, json!({"name": "security"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = app.post(&topics, &key, json!({"name": "Has Space"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        list(&app.get(&topics, &key).await.body, "name"),
        ["legal", "marketing", "security"]
    );

    // a leaves security, b joins marketing, nobody may leave legal.
    let pref =
        |who: &str, topic: &str| format!("/v1/channels/{ch}/subscribers/{who}/topics/{topic}");
    let put = |path: String, enabled: bool| {
        let app = &app;
        let key = key.clone();
        async move {
            app.call(
                Method::PUT,
                &path,
                Some(&key),
                Some(json!({"enabled": enabled})),
            )
            .await
        }
    };
    assert_eq!(
        put(pref(a, "security"), false).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put(pref(b, "marketing"), true).await.status,
        StatusCode::NO_CONTENT
    );
    let required = put(pref(c, "legal"), false).await;
    assert_eq!(required.status, StatusCode::CONFLICT);
    assert_eq!(required.code(), "topic_required");
    assert_eq!(
        put(pref(c, "nope"), true).await.status,
        StatusCode::NOT_FOUND
    );

    let prefs = app
        .get(&format!("/v1/channels/{ch}/subscribers/{a}/topics"), &key)
        .await;
    let security = prefs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == "security")
        .unwrap()
        .clone();
    assert_eq!(security["enabled"], false);
    assert_eq!(security["explicit"], true);

    let send = |topic: &str| {
        let app = &app;
        let key = key.clone();
        let path = format!("/v1/channels/{ch}/announcements");
        let body = json!({"text": format!("about {topic}"), "topic": topic});
        async move { app.post(&path, &key, body).await }
    };
    let recipients = |id: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let mut got = list(
                &app.get(&format!("/v1/announcements/{id}/deliveries"), &key)
                    .await
                    .body,
                "address",
            );
            got.sort();
            got
        }
    };
    let sec = send("security").await;
    assert_eq!(sec.status, StatusCode::ACCEPTED, "{}", sec.body);
    let mut want = vec![b.clone(), c.clone()];
    want.sort();
    assert_eq!(
        recipients(sec.body["id"].as_str().unwrap().into()).await,
        want
    );
    let mkt = send("marketing").await;
    assert_eq!(
        recipients(mkt.body["id"].as_str().unwrap().into()).await,
        vec![b.clone()]
    );
    let legal = send("legal").await;
    assert_eq!(
        recipients(legal.body["id"].as_str().unwrap().into())
            .await
            .len(),
        3
    );
    let unknown = send("nothing").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.code(), "unknown_topic");

    // The send-time rule, through the calls the pipeline makes, agrees, and follows later changes.
    let channel = ChannelId::from_trusted(ch.clone());
    let deliverable = |address: &str, topic: Option<&'static str>| {
        let (store, channel) = (&app.store, &channel);
        let address = Address::parse(address).unwrap();
        async move { crate::helpers::deliverable(store.as_ref(), channel, &address, topic).await }
    };
    assert!(!deliverable(a, Some("security")).await);
    assert!(deliverable(a, None).await);
    assert!(deliverable(b, Some("marketing")).await);
    assert!(!deliverable(c, Some("marketing")).await);
    assert!(deliverable(c, Some("legal")).await);
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/channels/{ch}/subscribers/{b}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(!deliverable(b, Some("marketing")).await);
    assert!(!deliverable(b, None).await);

    // The same calls over a whole batch: listed twice, never subscribed and unsubscribed
    // addresses mixed in; each answer holds the deliverable ones once.
    let stranger = addresses(8, 1).remove(0);
    let batch: Vec<String> = [a, b, c, &stranger, a].map(|s| s.to_owned()).to_vec();
    let parsed: Vec<Address> = batch.iter().map(|s| Address::parse(s).unwrap()).collect();
    let active = app
        .store
        .pipeline()
        .active_subscribers(&channel, &parsed)
        .await
        .unwrap();
    let want: std::collections::HashSet<Address> = [a, c]
        .into_iter()
        .map(|s| Address::parse(s).unwrap())
        .collect();
    assert_eq!(active, want);
    let legal_now = app
        .store
        .topic_receivers(&channel, "legal", &batch)
        .await
        .unwrap();
    assert_eq!(legal_now, [a.clone(), c.clone()].into_iter().collect());
    let marketing_now = app
        .store
        .topic_receivers(&channel, "marketing", &batch)
        .await
        .unwrap();
    assert!(marketing_now.is_empty(), "{marketing_now:?}");

    // Deleting a topic removes the choices made for it.
    let del = app
        .call(
            Method::DELETE,
            &format!("{topics}/security"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(deliverable(a, Some("security")).await);
}

#[tokio::test]
async fn api_and_import_changes_are_in_the_consent_log_and_its_export() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let people = addresses(9, 3);
    app.subscribe(&key, &ch, &people).await;
    // Importing the same list again changes nothing and logs nothing.
    app.subscribe(&key, &ch, &people).await;
    let one = &people[0];
    let path = format!("/v1/channels/{ch}/subscribers/{one}");
    app.call(Method::DELETE, &path, Some(&key), None).await;
    app.call(Method::DELETE, &path, Some(&key), None).await; // no change, not logged
    app.call(Method::PUT, &path, Some(&key), None).await;

    let history = app.get(&format!("{path}/consent"), &key).await;
    let entries = history.body["entries"].as_array().unwrap();
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["source"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("subscribe".to_owned(), "import".to_owned()),
            ("unsubscribe".into(), "api".into()),
            ("subscribe".into(), "api".into())
        ]
    );
    assert!(entries[1]["evidence"]
        .as_str()
        .unwrap()
        .starts_with("request:"));
    let never = app
        .get(
            &format!(
                "/v1/channels/{ch}/subscribers/0x0000000000000000000000000000000000000001/consent"
            ),
            &key,
        )
        .await;
    assert_eq!(never.body["status"], "never");

    // Export: 5 entries, paged by 2, then as NDJSON.
    let export = format!("/v1/channels/{ch}/consent");
    let mut cursor: Option<String> = None;
    let mut total = 0;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{export}?limit=2&cursor={c}"),
            None => format!("{export}?limit=2"),
        };
        let page = app.get(&page_path, &key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        total += page.body["items"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(total, 5);
    let ndjson = app
        .client
        .get(app.url(&format!("{export}?format=ndjson")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let text = ndjson.text().await.unwrap();
    assert_eq!(text.lines().count(), 5);
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(entry["created_at"].is_string());
    }

    // Another tenant cannot read it.
    let other = app.tenant("other").await;
    assert_eq!(app.get(&export, &other).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_welcome_text_is_per_channel() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let path = format!("/v1/channels/{ch}/welcome");
    assert_eq!(app.get(&path, &key).await.body["text"], Value::Null);
    let set = app
        .call(Method::PUT, &path, Some(&key), Some(json!({"text": "gm"})))
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(app.get(&path, &key).await.body["text"], "gm");
}

/// Preference changes read the topic before they write; many at once, next to other writers,
/// must all succeed (on SQLite a deferred transaction would fail its upgrade with "busy").
#[tokio::test]
async fn concurrent_preference_changes_all_succeed() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "news").await;
    app.topic(&key, &channel, json!({"name": "security", "default": "on"}))
        .await;
    let wallets = addresses(41, 40);
    app.subscribe(&key, &channel, &wallets).await;
    let calls = wallets.iter().enumerate().map(|(i, address)| {
        let (app, key, channel) = (&app, &key, &channel);
        async move {
            if i % 4 == 0 {
                // Another writer in the mix: announcements enqueue deliveries.
                return app
                    .post_announcement(key, channel, json!({"text": format!("n{i}")}))
                    .await;
            }
            app.call(
                Method::PUT,
                &format!("/v1/channels/{channel}/subscribers/{address}/topics/security"),
                Some(key),
                Some(json!({"enabled": i % 2 == 0})),
            )
            .await
        }
    });
    for reply in futures_util::future::join_all(calls).await {
        assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
    }
}
