//! The store contract exercised directly, on whichever backend the run uses.

use herald::domain::{Address, AnnouncementId, ChannelId, TenantId};
use herald::store::{
    Audience, Creation, IdempotencyBegin, IdempotencyCompletion, IdempotencyKey, NewAnnouncement,
    NewChannel, NewTenant, Page, Store as _, StoreError, StoredResponse, SubscribeOutcome,
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
    // A broken constraint is a conflict, never retried.
    let again = store
        .create_tenant(&NewTenant {
            id: tenant.clone(),
            name: "t".into(),
            key_hash: "h2".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert!(!again.is_retryable());

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
        send_at: None,
        content: None,
    };
    let completion = IdempotencyCompletion {
        key: key.clone(),
        unclaimed_hash: None,
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
        send_at: None,
        content: None,
    };
    assert!(
        matches!(
            store.create_announcement(&stranger, None).await.unwrap(),
            Creation::NoChannel
        ),
        "not the tenant's channel"
    );
    let Creation::Created(created) = store
        .create_announcement(&new, Some(completion))
        .await
        .unwrap()
    else {
        panic!("own channel")
    };
    assert_eq!(created.counts.total, 1);
    let replay = StoredResponse {
        status_code: 202,
        body: created.id.to_string(),
    };
    assert_eq!(
        store.begin_idempotent(&key, "hash").await.unwrap(),
        IdempotencyBegin::Replay(replay.clone())
    );

    // Unclaimed: the record is inserted with the announcement, unless the key is taken.
    let unclaimed = |key: &IdempotencyKey| IdempotencyCompletion {
        key: key.clone(),
        unclaimed_hash: Some("hash".into()),
        render: Box::new(|a| StoredResponse {
            status_code: 202,
            body: a.id.to_string(),
        }),
    };
    let again = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant: tenant.clone(),
        channel: channel.clone(),
        text: "hello again".into(),
        priority: Default::default(),
        audience: Audience::All,
        send_at: None,
        content: None,
    };
    assert!(matches!(
        store
            .create_announcement(&again, Some(unclaimed(&key)))
            .await
            .unwrap(),
        Creation::KeyExists
    ));
    assert!(
        store
            .get_announcement(&tenant, &again.id)
            .await
            .unwrap()
            .is_none(),
        "a taken key creates nothing"
    );
    let fresh = IdempotencyKey {
        tenant: tenant.clone(),
        key: "fresh".into(),
    };
    let Creation::Created(once) = store
        .create_announcement(&again, Some(unclaimed(&fresh)))
        .await
        .unwrap()
    else {
        panic!("a new key creates")
    };
    assert_eq!(
        store.begin_idempotent(&fresh, "hash").await.unwrap(),
        IdempotencyBegin::Replay(StoredResponse {
            status_code: 202,
            body: once.id.to_string(),
        })
    );
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
    let store = herald::store::SqliteStore::connect(&url, 2)
        .await
        .expect("reopens");
    // A closed pool is an outage: retryable, unlike a failing query.
    let bad = sqlx::query("SELECT nope FROM nowhere")
        .execute(store.pool())
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert!(matches!(bad, StoreError::Database(_)) && !bad.is_retryable());
    store.pool().close().await;
    let down = store.ping().await.unwrap_err();
    assert!(matches!(down, StoreError::Unavailable(_)) && down.is_retryable());
}

#[tokio::test]
async fn a_locked_sqlite_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store = herald::store::SqliteStore::connect(&url, 2).await.unwrap();
    // Another connection holds the write lock, so a write finds the file busy.
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let err = store
        .insert_setting_if_absent("locked", "v")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert!(store.insert_setting_if_absent("locked", "v").await.unwrap());
}

#[tokio::test]
async fn channel_identity_and_client_state_round_trip() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 0).await;
    let key = app.tenant("acme").await;
    let raw_id = app.channel(&key, "alerts").await;
    let channel = ChannelId::parse(&raw_id).unwrap();
    let pipeline = app.store.pipeline();

    let secret = pipeline
        .channel_secret(&channel)
        .await
        .unwrap()
        .expect("live channel");
    assert!(!secret.deleted);
    herald::crypto::ChannelWallet::open(&app.kek, &secret.wallet_key_sealed, channel.as_str())
        .expect("opens");

    pipeline
        .set_channel_identity(&channel, "inbox-1", "inst-1")
        .await
        .unwrap();
    let shown = app.get(&format!("/v1/channels/{raw_id}"), &key).await;
    assert_eq!(shown.body["xmtp"]["inbox_id"], "inbox-1");

    // Client state is written only under the channel's sender lease.
    let now = chrono::Utc::now();
    let lease = pipeline
        .acquire_sender(&channel, "story", now + chrono::Duration::seconds(60), now)
        .await
        .unwrap()
        .expect("free lease");
    assert_eq!(pipeline.state_get(&channel, b"k").await.unwrap(), None);
    let put = |v: &[u8]| vec![(b"k".to_vec(), Some(v.to_vec()))];
    assert!(pipeline.state_write(&lease, put(b"v1")).await.unwrap());
    assert!(pipeline.state_write(&lease, put(b"v2")).await.unwrap());
    assert_eq!(
        pipeline.state_get(&channel, b"k").await.unwrap(),
        Some(b"v2".to_vec())
    );
    let delete = || vec![(b"k".to_vec(), None)];
    assert!(pipeline.state_write(&lease, delete()).await.unwrap());
    assert!(pipeline.state_write(&lease, delete()).await.unwrap());
    assert_eq!(pipeline.state_get(&channel, b"k").await.unwrap(), None);
    pipeline.release_sender(&lease, None, None).await.unwrap();

    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/channels/{raw_id}"),
        Some(&key),
        None,
    )
    .await;
    let secret = pipeline.channel_secret(&channel).await.unwrap().unwrap();
    assert!(secret.deleted, "deleted channels stop sending");
}
