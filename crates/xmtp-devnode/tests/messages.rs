//! MlsApi unary methods: ids, is_commit, dedup, paging, key packages, welcomes, commit log.

mod common;

use common::*;
use tonic::Code;
use xmtp_proto::associations_proto::RecoverableEd25519Signature;
use xmtp_proto::mls_api::*;
use xmtp_proto::mls_contents::WelcomeWrapperAlgorithm;

fn paging(direction: SortDirection, limit: u32, id_cursor: u64) -> Option<PagingInfo> {
    Some(PagingInfo {
        direction: direction as i32,
        limit,
        id_cursor,
    })
}

async fn query(c: &mut Clients, group: &[u8], p: Option<PagingInfo>) -> (Vec<u64>, PagingInfo) {
    let r = c
        .mls
        .query_group_messages(QueryGroupMessagesRequest {
            group_id: group.to_vec(),
            paging_info: p,
        })
        .await
        .unwrap()
        .into_inner();
    (
        r.messages.iter().map(|m| v1(m).id).collect(),
        r.paging_info.unwrap(),
    )
}

#[tokio::test]
async fn send_assigns_ids_derives_is_commit_and_dedups() {
    let (node, mut c) = start_memory().await;
    let g = [1u8; 16];
    let commit = private_message(&g, COMMIT, "c");
    let app = private_message(&g, APPLICATION, "a");
    let request = SendGroupMessagesRequest {
        messages: vec![input(commit.clone()), input(app.clone())],
    };
    c.mls.send_group_messages(request).await.unwrap();
    // Same bytes again: accepted, not stored twice.
    c.mls
        .send_group_messages(SendGroupMessagesRequest {
            messages: vec![input(app)],
        })
        .await
        .unwrap();
    let r = c
        .mls
        .query_group_messages(QueryGroupMessagesRequest {
            group_id: g.to_vec(),
            paging_info: paging(SortDirection::Ascending, 0, 0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.messages.len(), 2);
    let (a, b) = (v1(&r.messages[0]), v1(&r.messages[1]));
    assert!(a.id < b.id && a.created_ns > 0);
    assert!(a.is_commit && !b.is_commit);
    assert_eq!(
        (
            a.group_id.as_slice(),
            a.data.as_slice(),
            a.sender_hmac.len()
        ),
        (&g[..], &commit[..], 32)
    );

    let garbage = SendGroupMessagesRequest {
        messages: vec![input(vec![0, 1, 0, 5, 0])],
    };
    assert_eq!(
        c.mls.send_group_messages(garbage).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    node.shutdown().await;
}

#[tokio::test]
async fn paging_follows_node_go() {
    let (node, mut c) = start_memory().await;
    let (g, other) = ([2u8; 16], [3u8; 16]);
    let tags: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    send(&mut c, &g, &tags).await;
    send(&mut c, &other, &["x"]).await;

    let (first, info) = query(&mut c, &g, paging(SortDirection::Ascending, 0, 0)).await;
    assert_eq!(
        (first.len(), info.limit, info.id_cursor),
        (100, 100, first[99])
    );
    let (rest, info) = query(
        &mut c,
        &g,
        paging(SortDirection::Ascending, 100, info.id_cursor),
    )
    .await;
    assert_eq!((rest.len(), info.id_cursor), (50, 0));
    assert!(first
        .iter()
        .chain(&rest)
        .zip(first.iter().chain(&rest).skip(1))
        .all(|(a, b)| a < b));

    // Unspecified direction = descending, newest first; cursor bounds from above.
    let (desc, _) = query(&mut c, &g, paging(SortDirection::Unspecified, 3, 0)).await;
    assert_eq!(desc, vec![rest[49], rest[48], rest[47]]);
    let (below, info) = query(&mut c, &g, paging(SortDirection::Descending, 2, rest[0])).await;
    assert_eq!(
        (below, info.id_cursor),
        (vec![first[99], first[98]], first[98])
    );
    let (none, _) = query(&mut c, &g, None).await;
    assert_eq!(none.len(), 100);

    let newest = c
        .mls
        .get_newest_group_message(GetNewestGroupMessageRequest {
            group_ids: vec![g.to_vec(), vec![9; 16], other.to_vec()],
            include_content: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(newest.responses.len(), 3);
    let n0 = v1(newest.responses[0].group_message.as_ref().unwrap());
    assert_eq!((n0.id, n0.data.is_empty()), (rest[49], true));
    assert!(newest.responses[1].group_message.is_none());
    assert!(newest.responses[2].group_message.is_some());
    node.shutdown().await;
}

#[tokio::test]
async fn key_packages_are_validated_latest_wins_and_fetch_keeps_order() {
    let (node, mut c) = start_memory().await;
    let inbox = "cd".repeat(32);
    let (i1, i2) = (installation(1), installation(2));
    let (k1, k2) = (i1.verifying_key().to_bytes(), i2.verifying_key().to_bytes());
    let (old1, kp2, new1) = (
        key_package(&i1, &inbox),
        key_package(&i2, &inbox),
        key_package(&i1, &inbox),
    );
    for kp in [old1, kp2.clone(), new1.clone()] {
        c.mls.upload_key_package(upload(kp)).await.unwrap();
    }
    let request = FetchKeyPackagesRequest {
        installation_keys: vec![k2.to_vec(), vec![7; 32], k1.to_vec()],
    };
    let r = c
        .mls
        .fetch_key_packages(request)
        .await
        .unwrap()
        .into_inner();
    let kps: Vec<_> = r
        .key_packages
        .into_iter()
        .map(|k| k.key_package_tls_serialized)
        .collect();
    assert_eq!(kps, vec![kp2, vec![], new1.clone()]);

    // Truncated bytes, and a flipped bit inside the signed content, are refused.
    let code = |e: tonic::Status| e.code();
    assert_eq!(
        code(
            c.mls
                .upload_key_package(upload(vec![0, 1, 0, 3]))
                .await
                .unwrap_err()
        ),
        Code::InvalidArgument
    );
    let mut tampered = new1;
    tampered[10] ^= 1;
    let err = c
        .mls
        .upload_key_package(upload(tampered))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    node.shutdown().await;
}

fn upload(kp: Vec<u8>) -> UploadKeyPackageRequest {
    UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: kp,
        }),
        is_inbox_id_credential: true,
    }
}

pub fn welcome(key: &[u8], data: &[u8]) -> WelcomeMessageInput {
    WelcomeMessageInput {
        version: Some(welcome_message_input::Version::V1(
            welcome_message_input::V1 {
                installation_key: key.to_vec(),
                data: data.to_vec(),
                hpke_public_key: vec![5; 32],
                wrapper_algorithm: WelcomeWrapperAlgorithm::Curve25519 as i32,
                welcome_metadata: vec![6; 18],
            },
        )),
    }
}

#[tokio::test]
async fn welcomes_are_stored_per_installation_and_validated() {
    let (node, mut c) = start_memory().await;
    let key = [4u8; 32];
    let request = SendWelcomeMessagesRequest {
        messages: vec![
            welcome(&key, b"w1"),
            welcome(&key, b"w2"),
            welcome(&key, b"w1"),
        ],
    };
    c.mls.send_welcome_messages(request).await.unwrap();
    let r = c
        .mls
        .query_welcome_messages(QueryWelcomeMessagesRequest {
            installation_key: key.to_vec(),
            paging_info: paging(SortDirection::Ascending, 100, 0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.messages.len(), 2, "duplicate welcome dropped");
    let Some(welcome_message::Version::V1(w)) = &r.messages[0].version else {
        panic!("v1")
    };
    assert_eq!(
        (
            w.data.as_slice(),
            w.welcome_metadata.len(),
            w.wrapper_algorithm
        ),
        (&b"w1"[..], 18, 1)
    );

    let no_key = SendWelcomeMessagesRequest {
        messages: vec![welcome(&[], b"x")],
    };
    assert_eq!(
        c.mls
            .send_welcome_messages(no_key)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    node.shutdown().await;
}

#[tokio::test]
async fn commit_log_is_stored_and_returned_and_legacy_methods_are_unimplemented() {
    let (node, mut c) = start_memory().await;
    let g = vec![8u8; 16];
    let entry = |n: u8| PublishCommitLogRequest {
        group_id: g.clone(),
        serialized_commit_log_entry: vec![n; 10],
        signature: Some(RecoverableEd25519Signature {
            bytes: vec![0; 64],
            public_key: vec![0; 32],
        }),
    };
    c.mls
        .batch_publish_commit_log(BatchPublishCommitLogRequest {
            requests: vec![entry(1), entry(2)],
        })
        .await
        .unwrap();
    let r = c
        .mls
        .batch_query_commit_log(BatchQueryCommitLogRequest {
            requests: vec![QueryCommitLogRequest {
                group_id: g.clone(),
                paging_info: paging(SortDirection::Ascending, 100, 0),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let entries = &r.responses[0].commit_log_entries;
    assert_eq!(
        entries
            .iter()
            .map(|e| e.serialized_commit_log_entry[0])
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(entries[0].sequence_id < entries[1].sequence_id);

    let too_many = BatchPublishCommitLogRequest {
        requests: (0..11).map(entry).collect(),
    };
    assert_eq!(
        c.mls
            .batch_publish_commit_log(too_many)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let legacy = c
        .mls
        .get_identity_updates(GetIdentityUpdatesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(legacy.code(), Code::Unimplemented);
    let register = c
        .mls
        .register_installation(RegisterInstallationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(register.code(), Code::Unimplemented);
    node.shutdown().await;
}
