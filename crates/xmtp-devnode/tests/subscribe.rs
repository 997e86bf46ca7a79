//! Subscriptions: headers at once, replay after each filter's cursor (also 0), then live,
//! never an id twice per topic.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::timeout;
use tokio_stream::StreamExt;
use tonic::Code;
use xmtp_proto::mls_api::*;

const WAIT: Duration = Duration::from_secs(5);

async fn next_ids(stream: &mut tonic::Streaming<GroupMessage>, n: usize) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = timeout(WAIT, stream.next())
            .await
            .expect("message in time")
            .expect("stream open")
            .expect("ok");
        let v = v1(&m);
        out.push((v.group_id.clone(), v.id));
    }
    out
}

async fn nothing_more(stream: &mut tonic::Streaming<GroupMessage>) {
    assert!(
        timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "unexpected extra message"
    );
}

fn filter(group: &[u8], cursor: u64) -> subscribe_group_messages_request::Filter {
    subscribe_group_messages_request::Filter {
        group_id: group.to_vec(),
        id_cursor: cursor,
    }
}

#[tokio::test]
async fn subscription_answers_at_once_even_without_messages() {
    let (node, mut c) = start_memory().await;
    let request = SubscribeGroupMessagesRequest { filters: vec![] };
    // A tonic client only returns from the call once response headers arrived.
    let mut stream = timeout(WAIT, c.mls.subscribe_group_messages(request))
        .await
        .expect("headers in time")
        .unwrap()
        .into_inner();
    nothing_more(&mut stream).await;
    node.shutdown().await;
}

#[tokio::test]
async fn replays_from_zero_and_from_cursor_then_goes_live() {
    let (node, mut c) = start_memory().await;
    let (a, b) = ([1u8; 16], [2u8; 16]);
    send(&mut c, &a, &["a1", "a2", "a3"]).await;
    send(&mut c, &b, &["b1", "b2"]).await;
    let (a_ids, _) = (
        c.mls
            .query_group_messages(QueryGroupMessagesRequest {
                group_id: a.to_vec(),
                paging_info: Some(PagingInfo {
                    direction: SortDirection::Ascending as i32,
                    limit: 0,
                    id_cursor: 0,
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .iter()
            .map(|m| v1(m).id)
            .collect::<Vec<_>>(),
        (),
    );

    // Group a from after its first message, group b from 0.
    let request = SubscribeGroupMessagesRequest {
        filters: vec![filter(&a, a_ids[0]), filter(&b, 0)],
    };
    let mut stream = c
        .mls
        .subscribe_group_messages(request)
        .await
        .unwrap()
        .into_inner();
    let replayed = next_ids(&mut stream, 4).await;
    let of = |g: &[u8; 16]| {
        replayed
            .iter()
            .filter(|(t, _)| t == g)
            .map(|(_, id)| *id)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&a), a_ids[1..].to_vec());
    assert_eq!(of(&b).len(), 2);

    send(&mut c, &a, &["a4"]).await;
    send(&mut c, &[9u8; 16], &["elsewhere"]).await;
    send(&mut c, &b, &["b3"]).await;
    let live = next_ids(&mut stream, 2).await;
    assert_eq!(
        live.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>(),
        vec![a.to_vec(), b.to_vec()]
    );
    assert!(live[0].1 > a_ids[2] && live[1].1 > live[0].1);
    nothing_more(&mut stream).await;
    node.shutdown().await;
}

#[tokio::test]
async fn concurrent_writes_during_replay_arrive_once_and_in_order() {
    let (node, mut c) = start_memory().await;
    let g = [5u8; 16];
    let tags: Vec<String> = (0..250).map(|i| format!("old{i}")).collect();
    send(
        &mut c,
        &g,
        &tags.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    let mut writer = connect(&node).await;
    let write = tokio::spawn(async move {
        for i in 0..50 {
            send(&mut writer, &g, &[&format!("new{i}")]).await;
        }
    });
    let request = SubscribeGroupMessagesRequest {
        filters: vec![filter(&g, 0)],
    };
    let mut stream = c
        .mls
        .subscribe_group_messages(request)
        .await
        .unwrap()
        .into_inner();
    write.await.unwrap();
    let ids: Vec<u64> = next_ids(&mut stream, 300)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ascending, no duplicates"
    );
    nothing_more(&mut stream).await;
    node.shutdown().await;
}

#[tokio::test]
async fn welcome_subscription_replays_and_streams() {
    let (node, mut c) = start_memory().await;
    let key = [4u8; 32];
    let welcome = |data: &[u8]| WelcomeMessageInput {
        version: Some(welcome_message_input::Version::V1(
            welcome_message_input::V1 {
                installation_key: key.to_vec(),
                data: data.to_vec(),
                hpke_public_key: vec![1; 32],
                wrapper_algorithm: 1,
                welcome_metadata: vec![],
            },
        )),
    };
    c.mls
        .send_welcome_messages(SendWelcomeMessagesRequest {
            messages: vec![welcome(b"old")],
        })
        .await
        .unwrap();
    let filters = vec![subscribe_welcome_messages_request::Filter {
        installation_key: key.to_vec(),
        id_cursor: 0,
    }];
    let mut stream = c
        .mls
        .subscribe_welcome_messages(SubscribeWelcomeMessagesRequest { filters })
        .await
        .unwrap()
        .into_inner();
    c.mls
        .send_welcome_messages(SendWelcomeMessagesRequest {
            messages: vec![welcome(b"new")],
        })
        .await
        .unwrap();
    for expected in [&b"old"[..], b"new"] {
        let m = timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Some(welcome_message::Version::V1(w)) = m.version else {
            panic!("v1")
        };
        assert_eq!(w.data, expected);
    }

    let empty = SubscribeWelcomeMessagesRequest { filters: vec![] };
    assert_eq!(
        c.mls
            .subscribe_welcome_messages(empty)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    node.shutdown().await;
}
