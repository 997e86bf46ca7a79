//! Which channel a delivery worker serves first: the store ranks channels by their most urgent
//! due delivery (critical, then normal, then bulk), ignoring deliveries not yet due.

use chrono::{Duration, Utc};
use herald::domain::{Address, AnnouncementId, ChannelId, Priority, TenantId};
use herald::store::{Audience, Creation, NewAnnouncement, NewChannel, NewTenant};

use crate::helpers::TestApp;

#[tokio::test]
async fn channels_are_ranked_by_their_most_urgent_due_delivery() {
    let app = TestApp::spawn().await;
    let store = app.store.clone();
    let tenant = TenantId::generate();
    store
        .create_tenant(&NewTenant {
            id: tenant.clone(),
            name: "t".into(),
            key_hash: "rank".into(),
        })
        .await
        .unwrap();
    let reader = Address::parse("0x00000000000000000000000000000000000000cc").unwrap();
    let mut channels = Vec::new();
    for (n, plan) in [
        (1u8, vec![(Priority::Bulk, false)]),
        (2, vec![(Priority::Normal, false), (Priority::Bulk, false)]),
        (3, vec![(Priority::Critical, true), (Priority::Bulk, false)]),
        (
            4,
            vec![(Priority::Normal, false), (Priority::Critical, false)],
        ),
    ] {
        let channel = ChannelId::generate();
        store
            .create_channel(&NewChannel {
                id: channel.clone(),
                tenant: tenant.clone(),
                name: format!("c{n}"),
                description: None,
                address: Address::parse(&format!("0x{n:040x}")).unwrap(),
                wallet_key_sealed: vec![n],
            })
            .await
            .unwrap();
        // Registered, so only pending deliveries make it a candidate.
        store
            .pipeline()
            .set_channel_identity(&channel, &format!("inbox{n}"), &format!("inst{n}"))
            .await
            .unwrap();
        store.subscribe(&channel, &reader).await.unwrap();
        for (priority, later) in plan {
            let new = NewAnnouncement {
                id: AnnouncementId::generate(),
                tenant: tenant.clone(),
                channel: channel.clone(),
                text: "x".into(),
                priority,
                audience: Audience::All,
                send_at: later.then(|| Utc::now() + Duration::hours(1)),
                content: None,
            };
            let created = store.create_announcement(&new, None).await.unwrap();
            assert!(matches!(created, Creation::Created(_)));
        }
        channels.push(channel);
    }
    let now = Utc::now() + Duration::seconds(1);
    let pipeline = store.pipeline();
    // Channel 3's critical delivery is not due yet, so its bulk one ranks it with channel 1.
    let ranked = pipeline.sender_candidates(now, 16).await.unwrap();
    let expected = {
        let mut bulk = vec![channels[0].clone(), channels[2].clone()];
        bulk.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut order = vec![channels[3].clone(), channels[1].clone()];
        order.extend(bulk);
        order
    };
    assert_eq!(ranked, expected);
    let critical: Vec<bool> =
        futures_util::future::join_all(channels.iter().map(|c| pipeline.due_is_critical(c, now)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert_eq!(critical, [false, false, false, true]);
    assert_eq!(
        pipeline.sender_candidates(now, 1).await.unwrap(),
        expected[..1]
    );
}
