//! The watch store on both backends, driven directly: topic filtering of the subscribers a
//! watch evaluates, and the page commit's fences (the chain lease at its epoch, the watch's
//! revision and pause) around state changes and one-recipient alerts.

use std::time::Duration;

use herald::chain::watch::rule::SubscriberState;
use herald::chain::watch::{ArgBinding, WatchSpec};
use herald::domain::{ChannelId, TenantId, WatchId};
use herald::store::{NewWatch, PageCommit, WatchChange, WatchPatch, WatchRecord};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{addresses, TestApp, ADMIN_TOKEN};

const CHAIN: u64 = 31337;

fn spec(topic: Option<&str>) -> WatchSpec {
    WatchSpec {
        chain_id: CHAIN,
        contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
        function: "getUserAccountData(address user) returns (uint256 healthFactor)".into(),
        args: vec![ArgBinding {
            arg: "user".into(),
            from: Some("subscriber".into()),
            value: None,
        }],
        condition: json!({"arg": "healthFactor", "op": "<", "value": 1}),
        rearm: None,
        template: "{{ outputs.healthFactor }}".into(),
        topic: topic.map(str::to_owned),
        every_blocks: 1,
        cooldown_blocks: 0,
    }
}

async fn record(app: &TestApp, id: &WatchId) -> WatchRecord {
    app.store
        .active_watches(CHAIN)
        .await
        .unwrap()
        .into_iter()
        .find(|w| &w.id == id)
        .expect("the watch is active")
}

#[tokio::test]
async fn targets_follow_the_topic_and_commits_are_fenced() {
    let app = TestApp::spawn().await;
    let tenant = app
        .post("/v1/tenants", ADMIN_TOKEN, json!({"name": "lender"}))
        .await;
    let key = tenant.body["api_key"].as_str().unwrap().to_owned();
    let tenant = TenantId::parse(tenant.body["id"].as_str().unwrap()).unwrap();
    let ch = app.channel(&key, "positions").await;
    let channel = ChannelId::parse(&ch).unwrap();
    let wallets = addresses(0x5d, 3);
    app.subscribe(&key, &ch, &wallets).await;
    app.topic(&key, &ch, json!({"name": "liquidations", "default": "off"}))
        .await;
    let opted = app
        .call(
            Method::PUT,
            &format!(
                "/v1/channels/{ch}/subscribers/{}/topics/liquidations",
                wallets[1]
            ),
            Some(&key),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(opted.status, StatusCode::NO_CONTENT, "{}", opted.body);

    let mut ids = Vec::new();
    for topic in [None, Some("liquidations")] {
        let id = WatchId::generate();
        app.store
            .create_watch(&NewWatch {
                id: id.clone(),
                tenant: tenant.clone(),
                channel: channel.clone(),
                spec: spec(topic),
            })
            .await
            .unwrap()
            .expect("created");
        ids.push(id);
    }
    let all = record(&app, &ids[0]).await;
    let topical = record(&app, &ids[1]).await;
    let listed = |targets: Vec<herald::store::WatchTarget>| -> Vec<String> {
        targets.into_iter().map(|t| t.address).collect()
    };
    assert_eq!(
        listed(app.store.watch_targets(&all, "", 10).await.unwrap()),
        wallets
    );
    assert_eq!(
        listed(app.store.watch_targets(&all, &wallets[0], 1).await.unwrap()),
        vec![wallets[1].clone()],
        "paged by address"
    );
    assert_eq!(
        listed(app.store.watch_targets(&topical, "", 10).await.unwrap()),
        vec![wallets[1].clone()],
        "only the subscriber who turned the topic on"
    );

    let ttl = Duration::from_secs(60);
    let lease = app
        .store
        .triggers()
        .acquire_chain_lease(CHAIN, "first", ttl)
        .await
        .unwrap()
        .unwrap();
    let fired = SubscriberState {
        armed: false,
        fired_block: Some(7),
    };
    let alert = |address: &str| WatchChange {
        address: address.to_owned(),
        state: fired,
        value: Some("{\"healthFactor\":\"0\"}".into()),
        alert: Some(format!("alert for {address}")),
    };
    let done = app
        .store
        .commit_watch_page(&lease, &all, 7, &[alert(&wallets[2])], true)
        .await
        .unwrap();
    assert_eq!(done, PageCommit::Done { alerts: 1 });
    let to = app
        .raw_strings(&format!(
            "SELECT d.address FROM deliveries d JOIN announcements a ON a.id = d.announcement_id \
             WHERE a.channel_id = '{ch}'"
        ))
        .await;
    assert_eq!(to, vec![wallets[2].clone()], "one delivery, to that wallet");
    let targets = app.store.watch_targets(&all, "", 10).await.unwrap();
    assert_eq!(targets[2].state, Some(fired));
    assert_eq!(targets[0].state, None);
    let shown = app
        .store
        .get_watch(&tenant, &channel, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((shown.evaluated_block, shown.alerted), (Some(7), 1));

    // Another replica takes the lease over: the first holder writes nothing more.
    app.store
        .triggers()
        .release_chain_lease(&lease)
        .await
        .unwrap();
    let second = app
        .store
        .triggers()
        .acquire_chain_lease(CHAIN, "second", ttl)
        .await
        .unwrap()
        .unwrap();
    let refused = app
        .store
        .commit_watch_page(&lease, &all, 8, &[alert(&wallets[0])], true)
        .await
        .unwrap();
    assert_eq!(refused, PageCommit::LeaseLost);

    // A paused watch (or one edited since it was read) takes no writes either.
    app.store
        .update_watch(
            &tenant,
            &channel,
            &ids[0],
            &WatchPatch {
                paused: Some(true),
                spec: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let stale = app
        .store
        .commit_watch_page(&second, &all, 8, &[alert(&wallets[0])], true)
        .await
        .unwrap();
    assert_eq!(stale, PageCommit::Stale);
    let count = app
        .raw_strings(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM announcements WHERE channel_id = '{ch}'"
        ))
        .await;
    assert_eq!(count, vec!["1".to_owned()], "no alert past a fence");
    assert!(app.store.active_watches(CHAIN).await.unwrap().len() == 1);
}
