//! Association-state replay: valid logs build the expected state, invalid updates fail
//! with the reason a real node would give.

use ed25519_dalek::SigningKey as InstallationKey;
use k256::ecdsa::SigningKey as WalletKey;
use xmtp_proto::associations::sign::{
    add_installation_update, create_inbox_update, erc191_signature, installation_signature,
};
use xmtp_proto::associations::verify::eth_address;
use xmtp_proto::associations::{
    apply_update, replay, replay_all, signature_text, AssociationError, MemberId,
};
use xmtp_proto::associations_proto::{
    identity_action::Kind, IdentityAction, IdentityUpdate, RevokeAssociation,
};

fn wallet(n: u8) -> WalletKey {
    WalletKey::from_bytes(&[n; 32].into()).unwrap()
}

fn installation(n: u8) -> InstallationKey {
    InstallationKey::from_bytes(&[n; 32])
}

const T: u64 = 1_717_194_525_000_000_000;

#[test]
fn registration_builds_wallet_and_installation() {
    let (w, i) = (wallet(1), installation(2));
    let update = create_inbox_update(&w, &i, 0, T);
    let state = replay([&update]).unwrap();
    let address = eth_address(w.verifying_key());
    assert_eq!(
        state.inbox_id,
        xmtp_proto::associations::inbox_id(&address, 0).unwrap()
    );
    assert_eq!(state.addresses(), vec![address.clone()]);
    assert_eq!(
        state.installations(),
        vec![i.verifying_key().to_bytes().to_vec()]
    );
    assert_eq!(state.recovery_address, address);
}

#[test]
fn second_installation_is_added_by_the_wallet() {
    let w = wallet(1);
    let first = create_inbox_update(&w, &installation(2), 7, T);
    let second = add_installation_update(&first.inbox_id, &w, &installation(3), T + 1);
    let state = replay([&first, &second]).unwrap();
    assert_eq!(state.installations().len(), 2);
}

#[test]
fn tampered_text_fails_verification() {
    let mut update = create_inbox_update(&wallet(1), &installation(2), 0, T);
    // Another timestamp second changes the signature text, so the wallet signature is for another text.
    update.client_timestamp_ns += 5_000_000_000;
    let err = apply_update(None, &update).unwrap_err();
    assert!(
        matches!(
            err,
            AssociationError::MissingExistingMember | AssociationError::BadSignature
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_signer_is_rejected() {
    let mut update = create_inbox_update(&wallet(1), &installation(2), 0, T);
    let text = signature_text(&update).unwrap();
    let intruder = erc191_signature(&wallet(9), &text);
    if let Some(Kind::CreateInbox(c)) = update.actions[0].kind.as_mut() {
        c.initial_identifier_signature = Some(intruder);
    }
    assert_eq!(
        apply_update(None, &update),
        Err(AssociationError::MissingExistingMember)
    );
}

#[test]
fn bad_inbox_id_is_rejected() {
    let w = wallet(1);
    let mut update = create_inbox_update(&w, &installation(2), 0, T);
    update.inbox_id =
        xmtp_proto::associations::inbox_id(&eth_address(w.verifying_key()), 1).unwrap();
    // Re-sign so only the inbox id is wrong.
    let text = signature_text(&update).unwrap();
    let ws = erc191_signature(&w, &text);
    let is = installation_signature(&installation(2), &text);
    for a in &mut update.actions {
        match a.kind.as_mut() {
            Some(Kind::CreateInbox(c)) => c.initial_identifier_signature = Some(ws.clone()),
            Some(Kind::Add(add)) => {
                add.existing_member_signature = Some(ws.clone());
                add.new_member_signature = Some(is.clone());
            }
            _ => {}
        }
    }
    assert!(matches!(
        apply_update(None, &update),
        Err(AssociationError::WrongInboxId { .. })
    ));
    update.inbox_id = "not-hex".into();
    assert!(matches!(
        apply_update(None, &update),
        Err(AssociationError::InvalidInboxId(_))
    ));
}

#[test]
fn stranger_cannot_add_an_installation() {
    let first = create_inbox_update(&wallet(1), &installation(2), 0, T);
    let sneaky = add_installation_update(&first.inbox_id, &wallet(5), &installation(3), T + 1);
    let state = replay([&first]).unwrap();
    assert_eq!(
        apply_update(Some(state), &sneaky),
        Err(AssociationError::MissingExistingMember)
    );
}

#[test]
fn create_twice_and_add_before_create_fail() {
    let first = create_inbox_update(&wallet(1), &installation(2), 0, T);
    let state = replay([&first]).unwrap();
    assert_eq!(
        apply_update(Some(state), &first),
        Err(AssociationError::MultipleCreate)
    );
    let add = add_installation_update(&first.inbox_id, &wallet(1), &installation(3), T);
    assert_eq!(apply_update(None, &add), Err(AssociationError::NotCreated));
}

#[test]
fn replayed_signature_is_rejected() {
    let w = wallet(1);
    let first = create_inbox_update(&w, &installation(2), 0, T);
    let second = add_installation_update(&first.inbox_id, &w, &installation(3), T + 1);
    let state = replay([&first, &second]).unwrap();
    assert_eq!(
        apply_update(Some(state), &second),
        Err(AssociationError::Replay)
    );
}

#[test]
fn recovery_address_revokes_wallet_and_its_installations() {
    let w = wallet(1);
    let first = create_inbox_update(&w, &installation(2), 0, T);
    let mut revoke = IdentityUpdate {
        inbox_id: first.inbox_id.clone(),
        client_timestamp_ns: T + 2,
        actions: vec![IdentityAction {
            kind: Some(Kind::Revoke(RevokeAssociation {
                member_to_revoke: Some(
                    MemberId::Ethereum(eth_address(w.verifying_key())).to_proto(),
                ),
                recovery_identifier_signature: None,
            })),
        }],
    };
    let text = signature_text(&revoke).unwrap();
    if let Some(Kind::Revoke(r)) = revoke.actions[0].kind.as_mut() {
        r.recovery_identifier_signature = Some(erc191_signature(&w, &text));
    }
    let state = replay([&first, &revoke]).unwrap();
    assert!(state.addresses().is_empty());
    assert!(state.installations().is_empty());
}

/// Replaces the installation's signature of a registration's "add installation" action.
fn with_installation_signature(update: &mut IdentityUpdate, key: &InstallationKey, text: &str) {
    for a in &mut update.actions {
        if let Some(Kind::Add(add)) = a.kind.as_mut() {
            add.new_member_signature = Some(installation_signature(key, text));
        }
    }
}

#[test]
fn logs_replayed_together_agree_with_logs_replayed_one_by_one() {
    let logs: Vec<Vec<IdentityUpdate>> = (1..=12u8)
        .map(|n| {
            let w = wallet(n);
            let first = create_inbox_update(&w, &installation(100 + n), 0, T);
            let second =
                add_installation_update(&first.inbox_id, &w, &installation(150 + n), T + 1);
            vec![first, second]
        })
        .collect();
    let one_by_one =
        |logs: &[Vec<IdentityUpdate>]| -> Vec<Result<_, _>> { logs.iter().map(replay).collect() };
    let together = replay_all(&refs(&logs));
    assert!(together.iter().all(Result::is_ok));
    assert_eq!(together, one_by_one(&logs));

    // One installation signature over other text, another by the wrong key, a third whose
    // key is no curve point: the batch fails, and every log gets its own verdict.
    let mut bad = logs.clone();
    with_installation_signature(&mut bad[2][0], &installation(102), "other text");
    let text = signature_text(&bad[5][1]).unwrap();
    with_installation_signature(&mut bad[5][1], &installation(99), &text);
    for a in &mut bad[8][0].actions {
        if let Some(Kind::Add(add)) = a.kind.as_mut() {
            if let Some(sig) = add.new_member_signature.as_mut() {
                if let Some(
                    xmtp_proto::associations_proto::signature::Signature::InstallationKey(k),
                ) = sig.signature.as_mut()
                {
                    k.public_key = vec![0xff; 32];
                }
            }
        }
    }
    let together = replay_all(&refs(&bad));
    assert_eq!(together, one_by_one(&bad));
    let failed: Vec<usize> = (0..together.len())
        .filter(|&i| together[i].is_err())
        .collect();
    assert_eq!(failed, vec![2, 5, 8]);
    assert_eq!(together[2], Err(AssociationError::BadSignature));
}

fn refs(logs: &[Vec<IdentityUpdate>]) -> Vec<Vec<&IdentityUpdate>> {
    logs.iter().map(|log| log.iter().collect()).collect()
}
