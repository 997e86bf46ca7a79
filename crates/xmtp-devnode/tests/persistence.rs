//! `--data DIR`: a restarted node keeps identities, key packages, groups, welcomes and
//! commit logs, and keeps counting ids upward.

mod common;

use common::*;
use xmtp_devnode::DevNodeConfig;
use xmtp_proto::associations::sign::create_inbox_update;
use xmtp_proto::associations::verify::eth_address;
use xmtp_proto::identity_api::*;
use xmtp_proto::mls_api::*;

fn config(dir: &std::path::Path) -> DevNodeConfig {
    DevNodeConfig {
        data_dir: Some(dir.to_path_buf()),
        ..DevNodeConfig::default()
    }
}

async fn group_ids(c: &mut Clients, g: &[u8]) -> Vec<u64> {
    let request = QueryGroupMessagesRequest {
        group_id: g.to_vec(),
        paging_info: Some(PagingInfo {
            direction: SortDirection::Ascending as i32,
            limit: 0,
            id_cursor: 0,
        }),
    };
    c.mls
        .query_group_messages(request)
        .await
        .unwrap()
        .into_inner()
        .messages
        .iter()
        .map(|m| v1(m).id)
        .collect()
}

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let w = wallet(1);
    let address = eth_address(w.verifying_key());
    let update = create_inbox_update(&w, &installation(2), 0, T);
    let inbox = update.inbox_id.clone();
    let g = [6u8; 16];
    let key = installation(2).verifying_key().to_bytes();
    let kp = key_package(&installation(2), &inbox);

    let (node, mut c) = start(config(dir.path())).await;
    c.identity
        .publish_identity_update(PublishIdentityUpdateRequest {
            identity_update: Some(update.clone()),
        })
        .await
        .unwrap();
    let upload = UploadKeyPackageRequest {
        key_package: Some(KeyPackageUpload {
            key_package_tls_serialized: kp.clone(),
        }),
        is_inbox_id_credential: true,
    };
    c.mls.upload_key_package(upload).await.unwrap();
    send(&mut c, &g, &["one", "two"]).await;
    let welcome = WelcomeMessageInput {
        version: Some(welcome_message_input::Version::V1(
            welcome_message_input::V1 {
                installation_key: key.to_vec(),
                data: b"welcome".to_vec(),
                hpke_public_key: vec![1; 32],
                wrapper_algorithm: 1,
                welcome_metadata: vec![2; 18],
            },
        )),
    };
    c.mls
        .send_welcome_messages(SendWelcomeMessagesRequest {
            messages: vec![welcome],
        })
        .await
        .unwrap();
    let before = group_ids(&mut c, &g).await;
    drop(c);
    node.shutdown().await;

    let (node, mut c) = start(config(dir.path())).await;
    assert_eq!(
        inbox_of(&mut c, &address).await.as_deref(),
        Some(inbox.as_str())
    );
    let logged = identity_updates(&mut c, &inbox, 0).await;
    assert_eq!(logged[0].update.as_ref(), Some(&update));

    let r = c
        .mls
        .fetch_key_packages(FetchKeyPackagesRequest {
            installation_keys: vec![key.to_vec()],
        })
        .await
        .unwrap();
    assert_eq!(
        r.into_inner().key_packages[0].key_package_tls_serialized,
        kp
    );
    assert_eq!(group_ids(&mut c, &g).await, before);
    let welcomes = c
        .mls
        .query_welcome_messages(QueryWelcomeMessagesRequest {
            installation_key: key.to_vec(),
            paging_info: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(welcomes.messages.len(), 1);

    // Ids continue after the replayed ones; duplicates are still recognised.
    send(&mut c, &g, &["one", "three"]).await;
    let after = group_ids(&mut c, &g).await;
    assert_eq!(after.len(), 3);
    assert!(after[2] > before[1]);
    // The restored identity state still validates: the same update is a second create.
    let again = c
        .identity
        .publish_identity_update(PublishIdentityUpdateRequest {
            identity_update: Some(update),
        })
        .await;
    assert_eq!(again.unwrap_err().code(), tonic::Code::InvalidArgument);
    drop(c);
    node.shutdown().await;
}

#[tokio::test]
async fn torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let g = [7u8; 16];
    let (node, mut c) = start(config(dir.path())).await;
    send(&mut c, &g, &["kept"]).await;
    drop(c);
    node.shutdown().await;
    // Simulate a crash in the middle of a record.
    let log = dir.path().join("devnode.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&log, &bytes).unwrap();

    let (node, mut c) = start(config(dir.path())).await;
    assert_eq!(group_ids(&mut c, &g).await.len(), 1);
    send(&mut c, &g, &["after"]).await;
    drop(c);
    node.shutdown().await;
    let (node, mut c) = start(config(dir.path())).await;
    assert_eq!(group_ids(&mut c, &g).await.len(), 2);
    drop(c);
    node.shutdown().await;
}
