//! Envelopes served again: a subscription replays after each originator's position then
//! streams, and a restarted data node serves the same envelopes.

use super::*;

#[tokio::test]
async fn subscriptions_replay_after_each_originators_position_then_stream() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let g = [8u8; 16];
    send(&mut v3, &g, &["a1", "a2"]).await;
    let mut stream = d
        .node
        .subscribe_envelopes(SubscribeEnvelopesRequest {
            query: Some(EnvelopesQuery {
                topics: vec![topic(0, &g)],
                originator_node_ids: vec![],
                last_seen: cursor(&[(10, 1)]),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        let batch = stream.next().await.unwrap().unwrap();
        batch
            .envelopes
            .iter()
            .map(|e| (open(e).0, open(e).1))
            .collect::<Vec<_>>()
    };
    assert_eq!(next().await, [(10, 2)], "replay after the cursor");
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![group_envelope(&g, private_message(&g, COMMIT, "c3"))],
        })
        .await
        .unwrap();
    assert_eq!(next().await, [(0, 3)], "then live");
    let err = d
        .node
        .subscribe_envelopes(SubscribeEnvelopesRequest {
            query: Some(EnvelopesQuery::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    node.shutdown().await;
}

#[tokio::test]
async fn a_restarted_data_node_serves_the_same_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let config = || xmtp_devnode::DevNodeConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..xmtp_devnode::DevNodeConfig::default()
    };
    let g = [3u8; 16];
    let key = installation(9);
    let installation_key = key.verifying_key().to_bytes().to_vec();
    let upload = UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: key_package(&key, &"cd".repeat(32)),
        }),
        is_inbox_id_credential: true,
    };
    let topics = vec![topic(0, &g), topic(3, &installation_key)];
    let before = {
        let (node, _) = start(config()).await;
        let mut d = d14n(node.url()).await;
        d.gateway
            .publish_client_envelopes(PublishClientEnvelopesRequest {
                envelopes: vec![
                    group_envelope(&g, private_message(&g, APPLICATION, "kept")),
                    envelope(
                        topic(3, &installation_key),
                        Payload::UploadKeyPackage(upload),
                    ),
                ],
            })
            .await
            .unwrap();
        let r = d
            .node
            .get_newest_envelope(GetNewestEnvelopeRequest {
                topics: topics.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        node.shutdown().await;
        r
    };
    let (node, _) = start(config()).await;
    let mut d = d14n(node.url()).await;
    let after = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest { topics })
        .await
        .unwrap()
        .into_inner();
    let ids = |r: &xmtp_proto::d14n_message_api::GetNewestEnvelopeResponse| {
        r.results
            .iter()
            .map(|x| {
                let (o, s, _) = open(x.originator_envelope.as_ref().unwrap());
                (o, s)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&before), [(10, 1), (13, 1)]);
    assert_eq!(
        ids(&after),
        ids(&before),
        "same originators and sequence ids"
    );
    node.shutdown().await;
}
