//! Triggers below REST: the SQL `ChainStore` against the engine's contract, the watcher lease
//! and its fencing, and events of a trigger deleted mid-batch.

use std::time::Duration;

use herald::chain::store::{BlockRef, ChainBatch};
use reqwest::{Method, StatusCode};

use super::{app, swap_trigger, CHAIN};
use crate::helpers::TestApp;

#[tokio::test]
async fn sql_chain_store_meets_the_engine_contract() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    let created = app
        .post(&format!("/v1/channels/{ch}/triggers"), &key, swap_trigger())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let store = app.store.triggers().chain_store(None);
    herald::chain::store::conformance::check(store.as_ref(), CHAIN, id).await;
}

fn block(n: u64) -> BlockRef {
    BlockRef {
        number: n,
        hash: alloy::primitives::B256::with_last_byte(n as u8),
        parent_hash: alloy::primitives::B256::with_last_byte(n as u8 - 1),
    }
}

fn cursor_batch(chain_id: u64, n: u64) -> ChainBatch {
    ChainBatch {
        chain_id,
        rollback_above: None,
        events: Vec::new(),
        promote: Vec::new(),
        window_add: vec![block(n)],
        window_prune_below: 0,
        cursor: block(n),
        scanned_to: Vec::new(),
    }
}

#[tokio::test]
async fn the_chain_lease_is_exclusive_and_fences_a_stale_holder() {
    let app = TestApp::spawn().await;
    let triggers = app.store.triggers();
    let chain = 4242;
    let long = Duration::from_secs(60);

    let a = triggers
        .acquire_chain_lease(chain, "a", Duration::from_millis(1))
        .await
        .unwrap()
        .expect("a free lease is taken");
    // A's lease is live for 1 ms: B polls until it has expired, then takes it over.
    let b = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(lease) = triggers
                .acquire_chain_lease(chain, "b", long)
                .await
                .unwrap()
            {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("an expired lease is taken over");
    assert!(b.epoch > a.epoch, "takeover bumps the epoch");
    assert!(
        triggers
            .acquire_chain_lease(chain, "c", long)
            .await
            .unwrap()
            .is_none(),
        "a live lease is not taken"
    );

    // A (stale) can neither commit nor renew; B commits.
    let stale = triggers.chain_store(Some(a.clone()));
    let err = stale
        .commit_batch(cursor_batch(chain, 5))
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("lease"),
        "{err}"
    );
    assert!(!triggers.renew_chain_lease(&a, long).await.unwrap());
    let current = triggers.chain_store(Some(b.clone()));
    current.commit_batch(cursor_batch(chain, 6)).await.unwrap();
    let state = current.load_state(chain).await.unwrap();
    assert_eq!(
        state.cursor.map(|c| c.number),
        Some(6),
        "only B's batch landed"
    );
    assert!(triggers.renew_chain_lease(&b, long).await.unwrap());

    // Releasing hands it over at once.
    triggers.release_chain_lease(&b).await.unwrap();
    let c = triggers
        .acquire_chain_lease(chain, "c", long)
        .await
        .unwrap()
        .expect("a released lease is free");
    assert!(c.epoch > b.epoch);
    assert!(current.commit_batch(cursor_batch(chain, 7)).await.is_err());
}

#[tokio::test]
async fn events_of_a_deleted_trigger_are_settled_without_an_announcement() {
    use herald::chain::store::{EventKey, EventStatus, MatchedEvent};
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    app.subscribe(&key, &ch, &crate::helpers::addresses(3, 2))
        .await;
    let path = format!("/v1/channels/{ch}/triggers");
    let live = app.post(&path, &key, swap_trigger()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = app.post(&path, &key, swap_trigger()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = app
        .call(Method::DELETE, &format!("{path}/{gone}"), Some(&key), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let event = |trigger: &str, tx: u8| MatchedEvent {
        key: EventKey {
            trigger_id: trigger.to_owned(),
            chain_id: CHAIN,
            tx_hash: alloy::primitives::B256::repeat_byte(tx),
            log_position: 0,
        },
        block_number: 5,
        block_hash: block(5).hash,
        log_index: 0,
        address: alloy::primitives::Address::repeat_byte(0xaa),
        text: format!("from {trigger}"),
        status: EventStatus::Ready,
    };
    let mut batch = cursor_batch(CHAIN, 5);
    batch.events = vec![event(&live, 1), event(&gone, 2)];
    let store = app.store.triggers().chain_store(None);
    store.commit_batch(batch).await.expect("the batch commits");
    let texts = app
        .raw_strings(&format!(
            "SELECT text FROM announcements WHERE channel_id = '{ch}'"
        ))
        .await;
    assert_eq!(texts, vec![format!("from {live}")]);
    let deliveries = app
        .raw_strings(&format!(
            "SELECT address FROM deliveries WHERE channel_id = '{ch}'"
        ))
        .await;
    assert_eq!(
        deliveries.len(),
        2,
        "the live trigger's announcement fans out"
    );
}
