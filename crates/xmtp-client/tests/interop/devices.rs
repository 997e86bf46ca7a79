//! Recipients and senders with several installations: (c) three, (d) one added later, (j) a
//! second herald installation.

use std::sync::Arc;

use super::sdk::random_key;
use super::{finish, memory_herald, start, transport};
use serde_json::json;
use xmtp_client::{Client, MemoryStore, Wallet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_recipient_with_three_installations_all_read() {
    let (node, mut sdk) = start().await;
    let (_, key) = random_key();
    let bobs = sdk
        .installations(&["bob1", "bob2", "bob3"], &key, &node.url())
        .await;
    assert!(
        bobs.iter().all(|b| b.inbox_id == bobs[0].inbox_id),
        "one inbox, three installations"
    );
    let herald = memory_herald(&node).await;
    herald
        .send_text(&bobs[0].inbox_id, "to every device", "k-all")
        .await
        .unwrap();
    for b in &bobs {
        let dm = sdk
            .find_dm(b, herald.inbox_id())
            .await
            .unwrap_or_else(|| panic!("{} lists the DM", b.name));
        assert_eq!(
            sdk.texts(b, &dm).await,
            vec!["to every device".to_owned()],
            "{}",
            b.name
        );
    }
    finish(sdk, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_installation_added_after_the_dm_reads_the_next_message() {
    let (node, mut sdk) = start().await;
    let (_, key) = random_key();
    let bobs = sdk
        .installations(&["bob1", "bob2", "bob3"], &key, &node.url())
        .await;
    let herald = memory_herald(&node).await;
    herald
        .send_text(&bobs[0].inbox_id, "first", "k-1")
        .await
        .unwrap();
    let dm1 = sdk.find_dm(&bobs[0], herald.inbox_id()).await.unwrap();
    assert_eq!(sdk.texts(&bobs[0], &dm1).await, vec!["first".to_owned()]);

    let bob4 = sdk.create("bob4", &key, &node.url()).await;
    herald
        .send_text(&bob4.inbox_id, "second", "k-2")
        .await
        .unwrap();
    let dm4 = sdk
        .find_dm(&bob4, herald.inbox_id())
        .await
        .expect("the 4th installation lists the DM");
    assert!(sdk.texts(&bob4, &dm4).await.contains(&"second".to_owned()));
    // The earlier installations still read along after the membership commit.
    assert_eq!(
        sdk.texts(&bobs[0], &dm1).await,
        vec!["first".to_owned(), "second".to_owned()]
    );
    finish(sdk, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j_second_herald_installation_is_in_the_dm_and_can_send() {
    let (node, mut sdk) = start().await;
    let bob = sdk.user("bob", &node.url()).await;
    let wallet = Wallet::generate();
    let a = Client::open(&wallet, transport(&node), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let b = Client::open(&wallet, transport(&node), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    assert_eq!(a.inbox_id(), b.inbox_id());
    assert_ne!(a.installation_id(), b.installation_id());

    // A's DM must contain B too (libxmtp rejects a welcome that omits an installation).
    a.send_text(&bob.inbox_id, "from installation A", "k-a")
        .await
        .unwrap();
    assert_eq!(b.sync_welcomes().await.unwrap(), vec![bob.inbox_id.clone()]);
    b.send_text(&bob.inbox_id, "from installation B", "k-b")
        .await
        .unwrap();

    let dm = sdk.find_dm(&bob, a.inbox_id()).await.expect("DM listed");
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec![
            "from installation A".to_owned(),
            "from installation B".to_owned()
        ]
    );
    assert_eq!(
        sdk.call("list", json!({"name": "bob"}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    finish(sdk, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_revoked_installation_leaves_and_a_new_one_joins_in_one_commit() {
    let (node, mut sdk) = start().await;
    let (_, key) = random_key();
    let bobs = sdk
        .installations(&["bob1", "bob2"], &key, &node.url())
        .await;
    let (bob1, bob2) = (&bobs[0], &bobs[1]);
    let herald = memory_herald(&node).await;
    herald
        .send_text(&bob1.inbox_id, "before", "k-1")
        .await
        .unwrap();
    let dm1 = sdk.find_dm(bob1, herald.inbox_id()).await.unwrap();

    // The wallet revokes bob2 and adds bob3: herald's next send removes and adds together.
    sdk.call(
        "revoke",
        json!({"name": "bob1", "installationIds": [bob2.installation_id]}),
    )
    .await;
    let bob3 = sdk.create("bob3", &key, &node.url()).await;
    herald
        .send_text(&bob1.inbox_id, "after", "k-2")
        .await
        .unwrap();

    assert_eq!(
        sdk.texts(bob1, &dm1).await,
        vec!["before".to_owned(), "after".to_owned()]
    );
    let dm3 = sdk
        .find_dm(&bob3, herald.inbox_id())
        .await
        .expect("bob3 joins");
    assert!(sdk.texts(&bob3, &dm3).await.contains(&"after".to_owned()));
    finish(sdk, node).await;
}
