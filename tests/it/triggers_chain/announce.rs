//! One watcher's announcements: after confirmations, paused and edited triggers, the quota.

use super::*;

async fn app_on(chain: &Chain) -> TestApp {
    let config = chain.config();
    TestApp::spawn_with(move |c| c.chains = vec![config]).await
}

#[tokio::test]
async fn a_swap_becomes_one_announcement_with_deliveries_after_confirmations() {
    let chain = Chain::start().await;
    let app = app_on(&chain).await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "whale swaps").await;
    let subscribers = addresses(7, 3);
    app.subscribe(&key, &ch, &subscribers).await;
    watcher_started(&app).await;

    let path = create_trigger(&app, &key, &ch, trigger(&chain, 3)).await;

    let (_, small_block) = chain.swap(5, -5).await; // filtered out by the condition
    let (_, block) = chain.swap(1_500_000_000_000_000_000, -2_500_000_000).await;
    assert!(small_block < block);
    // Two confirmations on top of the swap's block: scanned up to head - 3, nothing announced.
    chain.mine(2).await;
    scanned(&app, &key, &path, block - 1).await;
    assert!(
        announcements(&app, &ch).await.is_empty(),
        "announced before 3 confirmations"
    );

    chain.mine(1).await;
    let texts = eventually("the announcement", || async {
        let texts = announcements(&app, &ch).await;
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(
        texts,
        vec![format!("Swap 1.5 / -2500000000 at block {block} on anvil")]
    );
    let ann = app
        .raw_strings(&format!(
            "SELECT id FROM announcements WHERE channel_id = '{ch}'"
        ))
        .await
        .remove(0);
    let mut delivered = app
        .raw_strings(&format!(
            "SELECT address FROM deliveries WHERE announcement_id = '{ann}' AND status = 'pending'"
        ))
        .await;
    delivered.sort();
    assert_eq!(
        delivered, subscribers,
        "one pending delivery per subscriber"
    );
    let fetched = app.get(&format!("/v1/announcements/{ann}"), &key).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body["counts"]["total"], 3);
    // The listing shows the trigger's last match (the console's "last match" column).
    let listed = app.get(&format!("/v1/channels/{ch}/triggers"), &key).await;
    assert_eq!(
        listed.body["items"][0]["last_match_block"], block,
        "{}",
        listed.body
    );

    // Later blocks never announce it again.
    chain.mine(5).await;
    scanned(&app, &key, &path, block + 2).await;
    assert_eq!(announcements(&app, &ch).await.len(), 1);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "herald_chain_cursor_block",
        "herald_chain_head_block",
        "herald_chain_lease_held",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

/// The chain's committed cursor, once there is one.
async fn cursor(app: &TestApp) -> Option<u64> {
    app.raw_strings("SELECT CAST(block_number AS TEXT) FROM chain_cursors")
        .await
        .first()
        .map(|b| b.parse().unwrap())
}

#[tokio::test]
async fn paused_triggers_skip_events_and_edits_apply_to_later_ones() {
    let chain = Chain::start().await;
    let app = app_on(&chain).await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "swaps").await;
    app.subscribe(&key, &ch, &addresses(9, 1)).await;
    watcher_started(&app).await;
    let path = create_trigger(&app, &key, &ch, trigger(&chain, 1)).await;
    let patch = |body: Value| app.call(reqwest::Method::PATCH, &path, Some(&key), Some(body));
    assert_eq!(patch(json!({"paused": true})).await.status, StatusCode::OK);

    // While paused: the chain moves past the swap, nothing is announced.
    let (_, skipped) = chain.swap(4_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the cursor to pass the paused swap", || async {
        cursor(&app).await.filter(|c| *c >= skipped)
    })
    .await;

    // Resumed with a new template: live from here, rendered with the edit.
    let edited =
        patch(json!({"paused": false, "template": "Edited {{ args.amount0 | units(18) }}"})).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["revision"], 2);
    let (_, live) = chain.swap(5_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    eventually("the live announcement", || async {
        (!announcements(&app, &ch).await.is_empty()).then_some(())
    })
    .await;
    chain.mine(2).await;
    scanned(&app, &key, &path, live + 1).await;
    assert_eq!(announcements(&app, &ch).await, vec!["Edited 5".to_owned()]);
}

/// A trigger's announcements wait, like REST ones, while its tenant's unfinished announcements
/// have `max_pending_deliveries` recipients: the event is kept (not lost, not announced twice)
/// and announced once the deliveries drain.
#[tokio::test]
async fn trigger_announcements_wait_for_the_pending_deliveries_quota() {
    let chain = Chain::start().await;
    let config = chain.config();
    let app = TestApp::spawn_with(move |c| {
        c.chains = vec![config];
        c.quotas.max_pending_deliveries = 3;
    })
    .await;
    let key = app.tenant("dex").await;
    let ch = app.channel(&key, "whale swaps").await;
    app.subscribe(&key, &ch, &addresses(7, 1)).await;
    // Another channel of the tenant fills the quota (no delivery workers in these tests).
    let flood = app.channel(&key, "flood").await;
    app.subscribe(&key, &flood, &addresses(8, 3)).await;
    let r = app
        .post_announcement(&key, &flood, json!({"text": "flood"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let refused = app
        .post_announcement(&key, &ch, json!({"text": "by REST"}))
        .await;
    assert_eq!(refused.code(), "quota_exceeded", "{}", refused.body);
    watcher_started(&app).await;

    let path = create_trigger(&app, &key, &ch, trigger(&chain, 1)).await;
    let (_, block) = chain.swap(2_000_000_000_000_000_000, -1).await;
    chain.mine(1).await;
    scanned(&app, &key, &path, block).await;
    assert!(
        announcements(&app, &ch).await.is_empty(),
        "announced past the quota"
    );
    let kept = app
        .raw_strings("SELECT text FROM chain_events WHERE announcement_id IS NULL")
        .await;
    assert_eq!(kept.len(), 1, "the matched event is kept: {kept:?}");

    // The flood drains (its channel is deleted: deliveries skipped): the event is announced,
    // once.
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/channels/{flood}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let texts = eventually("the deferred announcement", || async {
        let texts = announcements(&app, &ch).await;
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(
        texts,
        vec![format!("Swap 2 / -1 at block {block} on anvil")]
    );
    chain.mine(3).await;
    scanned(&app, &key, &path, block + 2).await;
    assert_eq!(announcements(&app, &ch).await.len(), 1, "announced once");
    let metrics = herald::telemetry::metrics_handle().render();
    assert!(
        metrics.contains("herald_chain_events_deferred_total"),
        "{metrics}"
    );
}
