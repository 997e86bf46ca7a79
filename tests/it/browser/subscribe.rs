//! The subscribe page: a wallet on XMTP subscribes with a signature, switches a topic off and
//! reads the next announcement in its SDK client; a wallet not on XMTP is told so before it signs.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_page_subscribes_a_wallet_whose_sdk_client_reads_the_announcement() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("pages").await;
    let channel = app.channel(&key, "Protocol alerts").await;
    app.topic(
        &key,
        &channel,
        json!({"name": "security", "description": "Incidents and fixes"}),
    )
    .await;
    app.topic(&key, &channel, json!({"name": "governance"}))
        .await;
    let inbox = app.inbox_of(&key, &channel).await;

    // The wallet is on XMTP: the official SDK registers it first.
    let wallet_key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
    let mut sdk = Sdk::start().await;
    let user = sdk.create("wallet", &wallet_key, &app.xmtp_url).await;

    let mut pages = Pages::start(
        "subscribe",
        &[
            ("HERALD_URL", app.base.clone()),
            ("CHANNEL_ID", channel.clone()),
            ("CHANNEL_NAME", "Protocol alerts".into()),
            ("WALLET_KEY", wallet_key.clone()),
            ("TOPIC_OFF", "security".into()),
            (
                "SCREENSHOT",
                screenshot("subscribe.png").display().to_string(),
            ),
        ],
    )
    .await;
    assert_eq!(pages.next().await["phase"], "subscribed");
    // Queued while the wallet still receives `security` (scheduled, so nothing sends it yet);
    // then the page switches the topic off.
    let send_at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = app
        .post_announcement(
            &key,
            &channel,
            json!({ "text": "incident", "topic": "security", "send_at": send_at }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let queued = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["counts"]["pending"], 1, "{}", r.body);
    pages.say("continue").await;
    let result = pages.finish().await;
    let address = result["address"].as_str().unwrap().to_owned();
    assert_eq!(address, user.address.to_lowercase(), "{result}");
    assert_eq!(
        result["topics"],
        json!([["governance", true], ["security", true]]),
        "{result}"
    );

    // The consent log: a signature subscribe, then the topic switched off from the page.
    let consent = app
        .get(
            &format!("/v1/channels/{channel}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    assert_eq!(consent.body["status"], "active", "{}", consent.body);
    let entries = consent.body["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("subscribe", "signature"), ("topic_off", "signature")],
        "{entries:?}"
    );

    // The wallet's SDK client reads the next announcement.
    let text = format!("Upgrade window opens at 14:00 UTC ({})", ulid::Ulid::new());
    let r = app
        .post_announcement(&key, &channel, json!({ "text": text }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let done = wait_completed(&app, &key, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    let texts = sdk
        .dm_texts("wallet", &inbox)
        .await
        .expect("the SDK sees the DM");
    assert_eq!(texts, vec![text], "what the wallet reads");

    // Switched off on the page: the queued security announcement, once due, skips the wallet
    // (checked again at send time) ...
    make_due(&app, &queued).await;
    app.store.pipeline().wake_others().await.ok();
    let done = wait_completed(&app, &key, &queued).await;
    assert_eq!(done["counts"]["skipped"], 1, "{done}");
    let deliveries = app
        .get(&format!("/v1/announcements/{queued}/deliveries"), &key)
        .await;
    let item = &deliveries.body["items"][0];
    assert_eq!(item["address"], address.as_str(), "{}", deliveries.body);
    assert_eq!(item["status"], "skipped", "{item}");
    assert_eq!(item["reason"], "topic_opt_out", "{item}");
    // ... and a new one does not include it at all.
    let r = app
        .post_announcement(
            &key,
            &channel,
            json!({ "text": "again", "topic": "security" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["counts"]["total"], 0, "{}", r.body);
    let texts = sdk
        .dm_texts("wallet", &inbox)
        .await
        .expect("the SDK sees the DM");
    assert_eq!(texts.len(), 1, "nothing more reached the wallet: {texts:?}");
}

/// Moves a scheduled announcement's time to its creation (in the past), as if it had come
/// due; the workers' poll then sends it.
async fn make_due(app: &TestApp, id: &str) {
    let moved = app
        .raw_strings_bound(
            "UPDATE deliveries SET next_attempt_at = (SELECT created_at FROM announcements WHERE id = $1) \
             WHERE announcement_id = $1 RETURNING announcement_id",
            id,
        )
        .await;
    assert_eq!(moved.len(), 1);
    let moved = app
        .raw_strings_bound(
            "UPDATE announcements SET send_at = created_at WHERE id = $1 RETURNING id",
            id,
        )
        .await;
    assert_eq!(moved.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_page_explains_a_wallet_that_is_not_on_xmtp_before_any_signature() {
    let app = TestApp::spawn().await;
    let key = app.tenant("pages").await;
    let channel = app.channel(&key, "Protocol alerts").await;
    // Never registered on XMTP.
    let wallet_key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
    let result = Pages::start(
        "subscribe",
        &[
            ("HERALD_URL", app.base.clone()),
            ("CHANNEL_ID", channel.clone()),
            ("CHANNEL_NAME", "Protocol alerts".into()),
            ("WALLET_KEY", wallet_key),
            ("TOPIC_OFF", "none".into()),
            ("SCREENSHOT", "unused".into()),
            ("EXPECT_NOT_ON_XMTP", "1".into()),
        ],
    )
    .await
    .finish()
    .await;
    assert_eq!(result["subscribeShown"], false, "{result:#}");
    let warning = result["warning"].as_str().unwrap();
    assert!(warning.contains("not on XMTP yet"), "{warning}");
    assert!(warning.contains("not_on_xmtp"), "{warning}");
    // Nothing was signed or stored: no subscriber, no challenge spent.
    let address = result["address"].as_str().unwrap();
    let consent = app
        .get(
            &format!("/v1/channels/{channel}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    assert_eq!(consent.body["status"], "never", "{}", consent.body);
}
