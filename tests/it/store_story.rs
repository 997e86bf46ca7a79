//! The store contract exercised directly, on whichever backend the run uses.

use herald::domain::{Address, AnnouncementId, ChannelId, TenantId};
use herald::store::{
    Audience, IdempotencyBegin, IdempotencyCompletion, IdempotencyKey, NewAnnouncement, NewChannel,
    NewTenant, Page, StoredResponse, SubscribeOutcome,
};

use crate::helpers::TestApp;

#[tokio::test]
async fn store_story() {
    let app = TestApp::spawn().await;
    let store = app.store.clone();
    store.ping().await.unwrap();

    let tenant = TenantId::generate();
    store
        .create_tenant(&NewTenant {
            id: tenant.clone(),
            name: "t".into(),
            key_hash: "h1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.tenant_by_key_hash("h1").await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(store.tenant_by_key_hash("nope").await.unwrap(), None);

    let channel = ChannelId::generate();
    let address = Address::parse("0x00000000000000000000000000000000000000aa").unwrap();
    store
        .create_channel(&NewChannel {
            id: channel.clone(),
            tenant: tenant.clone(),
            name: "c".into(),
            description: None,
            address: address.clone(),
            wallet_key_sealed: vec![1, 2, 3],
        })
        .await
        .unwrap();
    let other = TenantId::generate();
    assert!(
        store.get_channel(&other, &channel).await.unwrap().is_none(),
        "scoped by tenant"
    );

    let sub = Address::parse("0x00000000000000000000000000000000000000bb").unwrap();
    assert_eq!(
        store.subscribe(&channel, &sub).await.unwrap(),
        SubscribeOutcome::Added
    );
    assert_eq!(
        store.subscribe(&channel, &sub).await.unwrap(),
        SubscribeOutcome::AlreadyActive
    );
    assert!(store.unsubscribe(&channel, &sub).await.unwrap());
    assert!(!store.unsubscribe(&channel, &sub).await.unwrap());
    assert_eq!(
        store.subscribe(&channel, &sub).await.unwrap(),
        SubscribeOutcome::Reactivated
    );
    let page = Page {
        limit: 10,
        cursor: None,
    };
    assert_eq!(
        store.list_subscribers(&channel, &page).await.unwrap().len(),
        1
    );

    // Idempotency: claim, collide, release, claim again, complete, replay, mismatch.
    let key = IdempotencyKey {
        tenant: tenant.clone(),
        key: "k".into(),
    };
    assert_eq!(
        store.begin_idempotent(&key, "hash").await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        store.begin_idempotent(&key, "hash").await.unwrap(),
        IdempotencyBegin::InProgress
    );
    store.abandon_idempotent(&key).await.unwrap();
    assert_eq!(
        store.begin_idempotent(&key, "hash").await.unwrap(),
        IdempotencyBegin::Started
    );
    let new = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant: tenant.clone(),
        channel: channel.clone(),
        text: "hello".into(),
        priority: Default::default(),
        audience: Audience::All,
    };
    let completion = IdempotencyCompletion {
        key: key.clone(),
        render: Box::new(|a| StoredResponse {
            status_code: 202,
            body: a.id.to_string(),
        }),
    };
    let stranger = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant: other.clone(),
        channel: channel.clone(),
        text: "not yours".into(),
        priority: Default::default(),
        audience: Audience::All,
    };
    assert!(
        store
            .create_announcement(&stranger, None)
            .await
            .unwrap()
            .is_none(),
        "not the tenant's channel"
    );
    let created = store
        .create_announcement(&new, Some(completion))
        .await
        .unwrap()
        .expect("own channel");
    assert_eq!(created.counts.total, 1);
    let replay = StoredResponse {
        status_code: 202,
        body: created.id.to_string(),
    };
    assert_eq!(
        store.begin_idempotent(&key, "hash").await.unwrap(),
        IdempotencyBegin::Replay(replay)
    );
    assert_eq!(
        store.begin_idempotent(&key, "other").await.unwrap(),
        IdempotencyBegin::Mismatch
    );
    assert!(store
        .get_announcement(&other, &created.id)
        .await
        .unwrap()
        .is_none());
    let fetched = store
        .get_announcement(&tenant, &created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched.counts.pending, 1);
}

#[tokio::test]
async fn sweeper_deletes_only_expired_idempotency_keys() {
    let app = TestApp::spawn().await;
    let store = app.store.clone();
    let tenant = TenantId::generate();
    store
        .create_tenant(&NewTenant {
            id: tenant.clone(),
            name: "t".into(),
            key_hash: "h".into(),
        })
        .await
        .unwrap();
    let key = IdempotencyKey {
        tenant,
        key: "fresh".into(),
    };
    store.begin_idempotent(&key, "hash").await.unwrap();
    let outcome = herald::workers::idempotency_sweeper::run_once(store.as_ref())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        herald::workers::Outcome::Idle,
        "a fresh key is kept"
    );
    // Anything created before "tomorrow" counts as expired for this call.
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    assert_eq!(store.purge_idempotency_keys(tomorrow, 10).await.unwrap(), 1);
    assert_eq!(
        store.begin_idempotent(&key, "other").await.unwrap(),
        IdempotencyBegin::Started
    );
}

#[tokio::test]
async fn sqlite_creates_its_folder_and_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/herald.db");
    let url = format!("sqlite://{}", path.display());
    let store = herald::store::SqliteStore::connect(&url, 2)
        .await
        .expect("creates the file");
    assert!(path.exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again applies no migration twice.
    drop(store);
    herald::store::SqliteStore::connect(&url, 2)
        .await
        .expect("reopens");
}

#[tokio::test]
async fn channel_identity_and_client_state_round_trip() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let raw_id = app.channel(&key, "alerts").await;
    let channel = ChannelId::parse(&raw_id).unwrap();
    let store = app.store.clone();

    let sealed = store
        .channel_wallet_sealed(&channel)
        .await
        .unwrap()
        .expect("live channel");
    herald::crypto::ChannelWallet::open(&app.kek, &sealed, channel.as_str()).expect("opens");

    store
        .set_channel_xmtp_identity(&channel, "inbox-1", "inst-1")
        .await
        .unwrap();
    let shown = app.get(&format!("/v1/channels/{raw_id}"), &key).await;
    assert_eq!(shown.body["xmtp"]["inbox_id"], "inbox-1");

    assert_eq!(store.channel_state_get(&channel, b"k").await.unwrap(), None);
    store
        .channel_state_put(&channel, b"k", b"v1")
        .await
        .unwrap();
    store
        .channel_state_put(&channel, b"k", b"v2")
        .await
        .unwrap();
    assert_eq!(
        store.channel_state_get(&channel, b"k").await.unwrap(),
        Some(b"v2".to_vec())
    );
    store.channel_state_delete(&channel, b"k").await.unwrap();
    store.channel_state_delete(&channel, b"k").await.unwrap();
    assert_eq!(store.channel_state_get(&channel, b"k").await.unwrap(), None);

    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/channels/{raw_id}"),
        Some(&key),
        None,
    )
    .await;
    assert!(
        store
            .channel_wallet_sealed(&channel)
            .await
            .unwrap()
            .is_none(),
        "deleted channels stop sending"
    );
}
