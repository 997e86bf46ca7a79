//! (a) the SDK lists and reads a herald DM, (b) replies flow back, (f) idempotent resends.

use super::{finish, memory_herald, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sdk_lists_the_dm_by_sync_and_stream_and_reads_the_exact_text() {
    let (node, mut sdk) = start().await;
    let bob = sdk.user("bob", &node.url()).await;
    sdk.call("streamStart", json!({"name": "bob"})).await;
    let herald = memory_herald(&node).await;

    let text = "Block 19000001: transfer of 5 ETH ✓ — herald";
    herald
        .send_text(&bob.inbox_id, text, "announce-1")
        .await
        .expect("send");

    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("SDK lists the DM after sync");
    assert_eq!(sdk.texts(&bob, &dm).await, vec![text.to_owned()]);
    let herald_inbox = herald.inbox_id().to_owned();
    let streamed = sdk
        .wait_streamed(&bob, |s| {
            let conv = s["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["peerInboxId"] == json!(herald_inbox));
            let msg = s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["text"] == json!(text));
            conv && msg
        })
        .await;
    assert!(
        streamed["errors"].as_array().unwrap().is_empty(),
        "stream errors: {streamed}"
    );
    finish(sdk, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_sdk_replies_and_herald_reads_the_reply() {
    let (node, mut sdk) = start().await;
    let bob = sdk.user("bob", &node.url()).await;
    let herald = memory_herald(&node).await;
    herald
        .send_text(&bob.inbox_id, "ping", "k-ping")
        .await
        .unwrap();

    let dm = sdk
        .find_dm(&bob, herald.inbox_id())
        .await
        .expect("DM listed");
    // libxmtp sends a key-update commit before its first message in a joined group.
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "pong from the SDK"}),
    )
    .await;

    let replies = herald.sync_dm(&bob.inbox_id).await.expect("sync");
    let texts: Vec<_> = replies.iter().filter_map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["pong from the SDK".to_owned()]);
    assert_eq!(replies[0].sender_inbox_id, bob.inbox_id);

    // Herald stays in the current epoch after the peer's commit: its next message is read.
    herald
        .send_text(&bob.inbox_id, "after the key update", "k-2")
        .await
        .unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await.last().unwrap(),
        "after the key update"
    );

    // A reply that arrives while herald is sending is kept for the next sync_dm.
    sdk.call(
        "reply",
        json!({"name": "bob", "conversationId": dm, "text": "second reply"}),
    )
    .await;
    herald
        .send_text(&bob.inbox_id, "third", "k-3")
        .await
        .unwrap();
    let later: Vec<_> = herald
        .sync_dm(&bob.inbox_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(later, vec!["second reply".to_owned()]);
    assert!(
        herald.sync_dm(&bob.inbox_id).await.unwrap().is_empty(),
        "handed out once"
    );
    finish(sdk, node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_same_idempotency_key_shows_once() {
    let (node, mut sdk) = start().await;
    let bob = sdk.user("bob", &node.url()).await;
    let herald = memory_herald(&node).await;
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-42")
        .await
        .unwrap();
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-42")
        .await
        .unwrap();
    herald
        .send_text(&bob.inbox_id, "exactly once", "delivery-43")
        .await
        .unwrap();
    let dm = sdk.find_dm(&bob, herald.inbox_id()).await.unwrap();
    assert_eq!(
        sdk.texts(&bob, &dm).await,
        vec!["exactly once".to_owned(), "exactly once".to_owned()],
        "the resend with key delivery-42 is deduplicated, delivery-43 is a new message"
    );
    finish(sdk, node).await;
}
