//! The channel state store under the sender lease: batched writes, deletes, one-query
//! multi-prefix scans, and fencing (a lost lease writes nothing).

use chrono::Utc;
use herald::domain::ChannelId;
use herald::store::pipeline::SenderLease;

use crate::helpers::TestApp;

async fn lease(app: &TestApp, channel: &ChannelId, owner: &str) -> Option<SenderLease> {
    let now = Utc::now();
    app.store
        .pipeline()
        .acquire_sender(channel, owner, now + chrono::Duration::seconds(60), now)
        .await
        .unwrap()
}

fn key(group: usize, entry: usize) -> Vec<u8> {
    format!("mls/g/{group:04}/entry{entry}").into_bytes()
}

#[tokio::test]
async fn batched_state_writes_and_multi_prefix_scans() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 0).await;
    let tenant = app.tenant("state").await;
    let channel = ChannelId::parse(&app.channel(&tenant, "state").await).unwrap();
    let pipeline = app.store.pipeline();
    let held = lease(&app, &channel, "writer").await.expect("free lease");

    // 1,300 groups × 3 entries: more rows than one multi-row statement takes.
    let mut batch = Vec::new();
    for g in 0..1300 {
        for e in 0..3 {
            batch.push((key(g, e), Some(format!("v{g}/{e}").into_bytes())));
        }
    }
    assert!(pipeline.state_write(&held, batch).await.unwrap());
    // Overwrite some, delete others (more deletes than one statement takes as well).
    let mut batch = vec![(key(7, 0), Some(b"new".to_vec()))];
    batch.extend((600..1300).map(|g| (key(g, 2), None)));
    assert!(pipeline.state_write(&held, batch).await.unwrap());

    let prefixes: Vec<Vec<u8>> = [7usize, 8, 650, 1299]
        .iter()
        .map(|g| format!("mls/g/{g:04}/").into_bytes())
        .collect();
    let mut rows = pipeline.state_scan_many(&channel, &prefixes).await.unwrap();
    rows.sort();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (key(7, 0), b"new".to_vec()),
        (key(7, 1), b"v7/1".to_vec()),
        (key(7, 2), b"v7/2".to_vec()),
        (key(8, 0), b"v8/0".to_vec()),
        (key(8, 1), b"v8/1".to_vec()),
        (key(8, 2), b"v8/2".to_vec()),
        (key(650, 0), b"v650/0".to_vec()),
        (key(650, 1), b"v650/1".to_vec()),
        (key(1299, 0), b"v1299/0".to_vec()),
        (key(1299, 1), b"v1299/1".to_vec()),
    ];
    assert_eq!(rows, expected, "exactly the entries under the prefixes");
    // The same as scanning each prefix on its own.
    let mut one_by_one = Vec::new();
    for p in &prefixes {
        one_by_one.extend(pipeline.state_scan(&channel, p).await.unwrap());
    }
    one_by_one.sort();
    assert_eq!(rows, one_by_one);
    assert!(pipeline
        .state_scan_many(&channel, &[b"mls/g/9999/".to_vec()])
        .await
        .unwrap()
        .is_empty());

    // Fencing: once another owner holds the channel, the old lease writes nothing.
    pipeline.release_sender(&held, None, None).await.unwrap();
    let other = lease(&app, &channel, "other")
        .await
        .expect("released lease");
    assert!(!pipeline
        .state_write(&held, vec![(key(8, 0), Some(b"stale".to_vec()))])
        .await
        .unwrap());
    assert_eq!(
        pipeline.state_get(&channel, &key(8, 0)).await.unwrap(),
        Some(b"v8/0".to_vec())
    );
    assert!(pipeline
        .state_write(&other, vec![(key(8, 0), Some(b"fresh".to_vec()))])
        .await
        .unwrap());
}

#[tokio::test]
async fn a_worker_retakes_its_own_unreleased_lease_others_wait() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 0).await;
    let tenant = app.tenant("lease").await;
    let channel = ChannelId::parse(&app.channel(&tenant, "lease").await).unwrap();
    let pipeline = app.store.pipeline();
    let first = lease(&app, &channel, "w0").await.expect("free lease");
    // Its release failed (say the database was down): nobody else may take it...
    assert!(lease(&app, &channel, "w1").await.is_none());
    // ...but the same worker need not wait for the expiry, and the old token is fenced off.
    let again = lease(&app, &channel, "w0").await.expect("own lease");
    assert!(again.token > first.token);
    assert!(!pipeline.renew_sender(&first, Utc::now()).await.unwrap());
    // A hold-off set by a release (no owner) keeps everyone out, the last holder included.
    let hold = Utc::now() + chrono::Duration::seconds(60);
    pipeline
        .release_sender(&again, Some("paused"), Some(hold))
        .await
        .unwrap();
    assert!(lease(&app, &channel, "w0").await.is_none());
    assert!(lease(&app, &channel, "w1").await.is_none());
}

#[tokio::test]
async fn a_released_delivery_is_pending_again_at_once_with_its_attempts_unchanged() {
    use herald::store::pipeline::SettleOutcome;

    let app = TestApp::spawn_with(|c| c.xmtp.workers = 0).await;
    let tenant = app.tenant("release").await;
    let channel_id = app.channel(&tenant, "release").await;
    let channel = ChannelId::parse(&channel_id).unwrap();
    app.subscribe(&tenant, &channel_id, &crate::helpers::addresses(0x5e, 2))
        .await;
    let posted = app
        .post_announcement(&tenant, &channel_id, serde_json::json!({ "text": "hi" }))
        .await;
    assert_eq!(
        posted.status,
        reqwest::StatusCode::ACCEPTED,
        "{}",
        posted.body
    );
    let pipeline = app.store.pipeline();
    let held = lease(&app, &channel, "drain").await.expect("free lease");
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    let claimed = pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // Claimed rows are leased: nothing more to claim.
    assert!(pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap()
        .is_empty());
    let (first, second) = (&claimed[0], &claimed[1]);
    let results = [
        (first.id, SettleOutcome::Release),
        (second.id, SettleOutcome::Delivered),
    ];
    let both = [first.id, second.id];
    assert_eq!(pipeline.claimed_pending(&held, &both).await.unwrap(), 2);
    let announcement = posted.body["id"].as_str().unwrap().to_owned();
    let settled = pipeline.settle(&held, &results, now).await.unwrap();
    assert_eq!(settled.rows, 2);
    assert_eq!(
        pipeline.claimed_pending(&held, &[second.id]).await.unwrap(),
        0,
        "a delivered row is no longer pending"
    );
    // The settle reports its announcement's status change (read in its own transaction).
    assert_eq!(
        settled.announcements,
        [(announcement.clone(), "queued".into(), "sending".into())]
    );
    let again = pipeline
        .claim_deliveries(&held, Utc::now(), until, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the released row is due at once");
    assert_eq!(again[0].id, first.id);
    assert_eq!(again[0].attempts, first.attempts, "no attempt counted");
    let last = pipeline
        .settle(
            &held,
            &[(again[0].id, SettleOutcome::Delivered)],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(last.rows, 1);
    assert_eq!(
        last.announcements,
        [(announcement, "sending".into(), "completed".into())]
    );
}

#[tokio::test]
async fn a_claim_takes_the_most_urgent_claimable_rank_then_the_next() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 0).await;
    let tenant = app.tenant("ranks").await;
    let channel_id = app.channel(&tenant, "ranks").await;
    let channel = ChannelId::parse(&channel_id).unwrap();
    app.subscribe(&tenant, &channel_id, &crate::helpers::addresses(0x7a, 2))
        .await;
    // Posted least urgent first, so id order alone would claim them the wrong way round.
    let mut posted = Vec::new();
    for priority in ["bulk", "normal", "critical"] {
        let created = app
            .post_announcement(
                &tenant,
                &channel_id,
                serde_json::json!({ "text": priority, "priority": priority }),
            )
            .await;
        assert_eq!(
            created.status,
            reqwest::StatusCode::ACCEPTED,
            "{}",
            created.body
        );
        posted.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let (bulk, normal, critical) = (&posted[0], &posted[1], &posted[2]);
    let pipeline = app.store.pipeline();
    let held = lease(&app, &channel, "drain").await.expect("free lease");
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    let claimed_of = |batch: &[herald::store::pipeline::ClaimedDelivery]| {
        let mut ids: Vec<String> = batch
            .iter()
            .map(|d| d.announcement_id.as_str().to_owned())
            .collect();
        ids.dedup();
        ids
    };
    // A batch holds one rank: the critical rows, though the limit leaves room for more.
    let first = pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(claimed_of(&first), std::slice::from_ref(critical));
    // The critical rows are still pending but leased: the next claim moves on to normal.
    let second = pipeline
        .claim_deliveries(&held, now, until, 1)
        .await
        .unwrap();
    assert_eq!(claimed_of(&second), std::slice::from_ref(normal));
    let third = pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed_of(&third),
        std::slice::from_ref(normal),
        "the rest of normal first"
    );
    let fourth = pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap();
    assert_eq!(fourth.len(), 2);
    assert_eq!(claimed_of(&fourth), std::slice::from_ref(bulk));
    assert!(pipeline
        .claim_deliveries(&held, now, until, 10)
        .await
        .unwrap()
        .is_empty());
}
