//! IdentityApi: valid updates are stored and indexed; invalid ones get INVALID_ARGUMENT.

mod common;

use common::*;
use tonic::Code;
use xmtp_proto::associations::sign::{
    add_installation_update, create_inbox_update, erc191_signature,
};
use xmtp_proto::associations::signature_text;
use xmtp_proto::associations::verify::eth_address;
use xmtp_proto::associations_proto::{identity_action::Kind, IdentityUpdate};
use xmtp_proto::identity_api::{
    PublishIdentityUpdateRequest, VerifySmartContractWalletSignatureRequestSignature,
    VerifySmartContractWalletSignaturesRequest,
};

async fn publish(c: &mut Clients, update: IdentityUpdate) -> Result<(), tonic::Status> {
    c.identity
        .publish_identity_update(PublishIdentityUpdateRequest {
            identity_update: Some(update),
        })
        .await
        .map(|_| ())
}

async fn updates(c: &mut Clients, inbox_id: &str, after: u64) -> Vec<u64> {
    identity_updates(c, inbox_id, after)
        .await
        .iter()
        .map(|u| u.sequence_id)
        .collect()
}

#[tokio::test]
async fn registration_is_stored_indexed_and_paged_by_sequence_id() {
    let (node, mut c) = start_memory().await;
    let w = wallet(1);
    let address = eth_address(w.verifying_key());
    assert_eq!(inbox_of(&mut c, &address).await, None);

    let first = create_inbox_update(&w, &installation(2), 0, T);
    let inbox = first.inbox_id.clone();
    publish(&mut c, first.clone()).await.unwrap();
    assert_eq!(
        inbox_of(&mut c, &address).await.as_deref(),
        Some(inbox.as_str())
    );

    publish(
        &mut c,
        add_installation_update(&inbox, &w, &installation(3), T + 1),
    )
    .await
    .unwrap();
    let all = updates(&mut c, &inbox, 0).await;
    assert_eq!(all.len(), 2);
    assert!(all[0] < all[1]);
    assert_eq!(updates(&mut c, &inbox, all[0]).await, vec![all[1]]);
    assert!(updates(&mut c, &inbox, all[1]).await.is_empty());

    // The bytes come back exactly as published (clients re-verify the signatures).
    let logged = identity_updates(&mut c, &inbox, 0).await;
    assert_eq!(logged[0].update.as_ref(), Some(&first));
    node.shutdown().await;
}

#[tokio::test]
async fn wrong_signature_text_is_rejected() {
    let (node, mut c) = start_memory().await;
    let mut update = create_inbox_update(&wallet(1), &installation(2), 0, T);
    // Signed for one timestamp, published with another: the rebuilt text differs.
    update.client_timestamp_ns += 60_000_000_000;
    let err = publish(&mut c, update).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    node.shutdown().await;
}

#[tokio::test]
async fn wrong_signer_is_rejected() {
    let (node, mut c) = start_memory().await;
    let mut update = create_inbox_update(&wallet(1), &installation(2), 0, T);
    let text = signature_text(&update).unwrap();
    if let Some(Kind::CreateInbox(create)) = update.actions[0].kind.as_mut() {
        create.initial_identifier_signature = Some(erc191_signature(&wallet(9), &text));
    }
    let err = publish(&mut c, update).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("existing member"),
        "{}",
        err.message()
    );
    node.shutdown().await;
}

#[tokio::test]
async fn bad_inbox_id_is_rejected() {
    let (node, mut c) = start_memory().await;
    let mut update = create_inbox_update(&wallet(1), &installation(2), 0, T);
    update.inbox_id = "ab".repeat(32);
    let err = publish(&mut c, update.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    update.inbox_id = "nope".into();
    assert_eq!(
        publish(&mut c, update).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    node.shutdown().await;
}

#[tokio::test]
async fn stranger_cannot_join_an_inbox_and_replays_fail() {
    let (node, mut c) = start_memory().await;
    let first = create_inbox_update(&wallet(1), &installation(2), 0, T);
    let inbox = first.inbox_id.clone();
    publish(&mut c, first.clone()).await.unwrap();
    let sneaky = add_installation_update(&inbox, &wallet(4), &installation(5), T + 1);
    assert_eq!(
        publish(&mut c, sneaky).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        publish(&mut c, first).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(updates(&mut c, &inbox, 0).await.len(), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn smart_contract_wallets_are_answered_invalid() {
    let (node, mut c) = start_memory().await;
    let request = VerifySmartContractWalletSignaturesRequest {
        signatures: vec![VerifySmartContractWalletSignatureRequestSignature {
            account_id: "eip155:1:0x0000000000000000000000000000000000000001".into(),
            ..Default::default()
        }],
    };
    let r = c
        .identity
        .verify_smart_contract_wallet_signatures(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.responses.len(), 1);
    assert!(!r.responses[0].is_valid);
    assert!(r.responses[0].error.is_some());
    node.shutdown().await;
}
