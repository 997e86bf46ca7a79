//! The node list, the health check, and key packages published through the gateway.

use super::*;

#[tokio::test]
async fn nodes_health_and_key_packages() {
    let (node, mut v3) = start_memory().await;
    let mut d = d14n(node.url()).await;
    let nodes = d
        .gateway
        .get_nodes(GetNodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), [(100, node.url())]);
    let status = d
        .health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let key = installation(7);
    let kp = key_package(&key, &"ab".repeat(32));
    let installation_key = key.verifying_key().to_bytes().to_vec();
    let upload = UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: kp.clone(),
        }),
        is_inbox_id_credential: true,
    };
    let wrong = envelope(
        topic(3, &[1; 32]),
        Payload::UploadKeyPackage(upload.clone()),
    );
    let err = d
        .gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![wrong],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let right = envelope(
        topic(3, &installation_key),
        Payload::UploadKeyPackage(upload),
    );
    d.gateway
        .publish_client_envelopes(PublishClientEnvelopesRequest {
            envelopes: vec![right],
        })
        .await
        .unwrap();
    let fetched = v3
        .mls
        .fetch_key_packages(FetchKeyPackagesRequest {
            installation_keys: vec![installation_key.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.key_packages[0].key_package_tls_serialized, kp);
    let r = d
        .node
        .get_newest_envelope(GetNewestEnvelopeRequest {
            topics: vec![topic(3, &installation_key)],
        })
        .await
        .unwrap()
        .into_inner();
    let (originator, _, client) = open(r.results[0].originator_envelope.as_ref().unwrap());
    assert_eq!(originator, 13);
    let Some(Payload::UploadKeyPackage(u)) = client.payload else {
        panic!("not a key package: {client:?}")
    };
    assert_eq!(u.key_package.unwrap().key_package_tls_serialized, kp);
    node.shutdown().await;
}
