//! Gateway publish: one cursor per originator under the v3-compatibility ids, writes read
//! through either API, and envelopes refused whole when a topic is not its payload's.

use super::*;

#[tokio::test]
async fn gateway_writes_are_read_with_one_cursor_per_originator() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let g = [4u8; 16];
    let published = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![
                group_envelope(&g, private_message(&g, COMMIT, "c1")),
                group_envelope(&g, private_message(&g, APPLICATION, "a2")),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let answered: Vec<_> = published
        .originator_envelopes
        .iter()
        .map(|e| (open(e).0, open(e).1))
        .collect();
    assert_eq!(
        answered,
        [(0, 1), (10, 2)],
        "commit -> 0, application -> 10"
    );
    // Through v3 as well; both APIs share the ids.
    send(&mut v3, &g, &["a3"]).await;
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, private_message(&g, COMMIT, "c4"))],
        })
        .await
        .unwrap();
    let v3_ids: Vec<u64> = v3
        .mls
        .query_group_messages(QueryGroupMessagesRequest {
            group_id: g.to_vec(),
            paging_info: None,
        })
        .await
        .unwrap()
        .into_inner()
        .messages
        .iter()
        .map(|m| v1(m).id)
        .collect();
    assert_eq!(v3_ids, [4, 3, 2, 1]);

    let t = vec![topic(0, &g)];
    assert_eq!(
        query(&mut d, t.clone(), None).await,
        [(0, 1), (10, 2), (10, 3), (0, 4)]
    );
    assert_eq!(
        query(&mut d, t.clone(), cursor(&[(0, 4)])).await,
        [(10, 2), (10, 3)],
        "a commit position says nothing about application messages"
    );
    assert_eq!(
        query(&mut d, t.clone(), cursor(&[(0, 1), (10, 3)])).await,
        [(0, 4)]
    );
    // The payload comes back as published, addressed to its topic.
    let r = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest {
            topics: vec![topic(0, &g), topic(0, &[9; 16])],
        })
        .await
        .unwrap()
        .into_inner();
    let newest = r.results[0].originator_envelope.as_ref().unwrap();
    let (_, seq, client) = open(newest);
    assert_eq!(seq, 4);
    assert_eq!(
        client,
        group_envelope(&g, private_message(&g, COMMIT, "c4"))
    );
    assert!(r.results[1].originator_envelope.is_none());
    node.shutdown().await;
}

#[tokio::test]
async fn envelopes_whose_topic_is_not_their_payloads_are_refused_whole() {
    let (node, _) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let (g, other) = ([5u8; 16], [6u8; 16]);
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![
                group_envelope(&g, private_message(&g, APPLICATION, "fine")),
                envelope(
                    topic(0, &other),
                    Payload::GroupMessage(input(private_message(&g, APPLICATION, "x"))),
                ),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(query(&mut d, vec![topic(0, &g)], None).await.is_empty());
    let no_aad = ClientEnvelope {
        aad: None,
        payload: Some(Payload::GroupMessage(input(private_message(
            &g,
            APPLICATION,
            "y",
        )))),
    };
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![no_aad],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Invalid MLS is refused by the v3 validation too.
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, vec![0, 1, 0, 2])],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    node.shutdown().await;
}
