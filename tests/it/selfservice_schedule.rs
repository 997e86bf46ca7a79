//! When a channel's inbox is read (`InboundStore` scheduling, both backends): never-read
//! channels first, stream marks that arrive during a pass keep the channel due, a
//! stream-triggered pass reads only the marked DMs, and the periodic fallback reads them all.

use chrono::{DateTime, Duration, Utc};
use herald::domain::{Address, ChannelId};
use herald::store::{InboundPlan, InboundTopics, Store};

use crate::helpers::*;

/// Whether the channel is listed as due at `at`.
async fn due(store: &dyn Store, channel: &ChannelId, at: DateTime<Utc>) -> bool {
    let due = store.inbound_due_channels(at, 10).await.unwrap();
    due.contains(channel)
}

/// Records a pass that started at `at` (next fallback 300 s later).
async fn finish(store: &dyn Store, channel: &ChannelId, at: DateTime<Utc>) {
    let next = at + Duration::seconds(300);
    store.finish_inbound_check(channel, at, next).await.unwrap();
}

#[tokio::test]
async fn inbound_passes_are_scheduled_by_marks_and_the_fallback() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let channel = ChannelId::parse(&app.channel(&key, "news").await).unwrap();
    let store = &*app.store;
    let t0 = Utc::now();

    // Registered and never read: due, and a pass reads everything.
    assert!(due(store, &channel, t0).await);
    assert_eq!(
        store.inbound_plan(&channel, t0).await.unwrap(),
        InboundPlan::All
    );
    finish(store, &channel, t0).await;
    let t1 = t0 + Duration::seconds(1);
    assert!(!due(store, &channel, t1).await);
    assert_eq!(
        store.inbound_plan(&channel, t1).await.unwrap(),
        InboundPlan::Nothing
    );

    // Peers are added in one batch, once; the followed one gets its DM group (a pair for an
    // unknown peer adds nothing).
    let a = addresses(0xa1, 2);
    let peers = vec![
        ("inbox-a".to_owned(), Address::parse(&a[0]).unwrap()),
        ("inbox-b".to_owned(), Address::parse(&a[1]).unwrap()),
    ];
    assert_eq!(store.add_inbound_peers(&channel, &peers).await.unwrap(), 2);
    assert_eq!(store.add_inbound_peers(&channel, &peers).await.unwrap(), 0);
    store
        .set_peer_groups(
            &channel,
            &[
                ("inbox-a".into(), "aa01".into()),
                ("inbox-unknown".into(), "ff01".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.peers_without_group(&channel).await.unwrap(),
        ["inbox-b"]
    );
    let InboundTopics { welcomes, groups } = store.inbound_topics().await.unwrap();
    assert_eq!(welcomes.len(), 1);
    assert_eq!(welcomes[0].0, channel);
    assert_eq!(groups, [(channel.clone(), "aa01".to_owned())]);

    // A stream arrival in A's DM: due, and the pass reads A (marked) and B (not followed yet).
    let t2 = t0 + Duration::seconds(2);
    store
        .mark_inbound_groups(&channel, &["aa01".into()], t2)
        .await
        .unwrap();
    store
        .mark_inbound(std::slice::from_ref(&channel), t2)
        .await
        .unwrap();
    assert!(due(store, &channel, t2).await);
    let InboundPlan::Peers(mut read) = store.inbound_plan(&channel, t2).await.unwrap() else {
        panic!("a stream-triggered pass reads some DMs");
    };
    read.sort();
    assert_eq!(read, ["inbox-a", "inbox-b"]);

    // A pass that started before the mark leaves the channel due; one after it does not.
    finish(store, &channel, t1).await;
    assert!(due(store, &channel, t2).await);
    let t3 = t0 + Duration::seconds(3);
    finish(store, &channel, t3).await;
    assert!(!due(store, &channel, t3).await);

    // The fallback comes round: everything is read again.
    let later = t3 + Duration::seconds(301);
    assert!(due(store, &channel, later).await);
    assert_eq!(
        store.inbound_plan(&channel, later).await.unwrap(),
        InboundPlan::All
    );
}
