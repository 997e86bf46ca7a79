use super::*;
use ed25519_dalek::{Signature, Signer as _, SigningKey};

const CONTEXT: &[u8] = b"IDENTITY UPDATE SIGNATURE";

fn signed(key: &SigningKey, message: &[u8]) -> DeferredSignature {
    DeferredSignature::new(
        message,
        &key.verifying_key().to_bytes(),
        &key.sign(message).to_bytes(),
    )
}

fn prehashed(key: &SigningKey, message: &[u8], context: &[u8]) -> DeferredSignature {
    let digest = Sha512::new().chain_update(message);
    let sig = key
        .sign_prehashed(digest.clone(), Some(context))
        .expect("short context");
    // ed25519-dalek itself accepts what the batch is given.
    key.verifying_key()
        .verify_prehashed(digest.clone(), Some(context), &sig)
        .expect("valid Ed25519ph");
    DeferredSignature::prehashed(
        digest.finalize().into(),
        context,
        &key.verifying_key().to_bytes(),
        &sig.to_bytes(),
    )
}

fn keys(n: u8) -> Vec<SigningKey> {
    (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
}

/// Per key: a key package's two plain signatures and an identity update's Ed25519ph one.
fn first_contact_batch(keys: &[SigningKey]) -> Vec<DeferredSignature> {
    keys.iter()
        .flat_map(|k| {
            [
                signed(k, b"leaf node"),
                signed(k, b"key package"),
                prehashed(k, b"identity update text", CONTEXT),
            ]
        })
        .collect()
}

#[test]
fn a_batch_of_good_signatures_passes_and_one_bad_one_fails_it() {
    let keys = keys(20);
    let mut batch = first_contact_batch(&keys);
    assert!(verify_all(&batch));
    assert!(verify_all(&[]));
    // A signature over other bytes, a flipped bit, a wrong key, a truncated signature.
    let mut other = batch.clone();
    other[7].signed = Signed::Message(b"something else".to_vec());
    assert!(!verify_all(&other));
    let mut flipped = batch.clone();
    flipped[30].signature[40] ^= 1;
    assert!(!verify_all(&flipped));
    let mut wrong_key = batch.clone();
    wrong_key[3].public_key = keys[5].verifying_key().to_bytes().to_vec();
    assert!(!verify_all(&wrong_key));
    batch[0].signature.pop();
    assert!(!verify_all(&batch));
}

#[test]
fn prehashed_signatures_need_their_context_message_and_flavour() {
    let key = SigningKey::from_bytes(&[4; 32]);
    let pk = key.verifying_key().to_bytes();
    let good = prehashed(&key, b"text", CONTEXT);
    assert!(verify_all(std::slice::from_ref(&good)));
    // Another context, another message.
    let mut other_context = good.clone();
    if let Signed::Prehashed { context, .. } = &mut other_context.signed {
        *context = b"OTHER".to_vec();
    }
    assert!(!verify_all(&[other_context]));
    let other_text = DeferredSignature::prehashed(
        Sha512::digest(b"txet").into(),
        CONTEXT,
        &pk,
        &good.signature,
    );
    assert!(!verify_all(&[other_text]));
    // A plain signature is not an Ed25519ph one over the same text, nor the reverse.
    let plain = key.sign(b"text").to_bytes();
    let as_prehashed =
        DeferredSignature::prehashed(Sha512::digest(b"text").into(), CONTEXT, &pk, &plain);
    assert!(!verify_all(&[as_prehashed]));
    let as_plain = DeferredSignature::new(b"text", &pk, &good.signature);
    assert!(!verify_all(&[as_plain]));
}

#[test]
fn the_batch_agrees_with_ed25519_dalek_on_random_signatures() {
    use rand::RngCore;
    let mut rng = rand::thread_rng();
    for round in 0..20 {
        let keys: Vec<SigningKey> = (0..5)
            .map(|_| {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                SigningKey::from_bytes(&seed)
            })
            .collect();
        let mut batch = first_contact_batch(&keys);
        assert!(verify_all(&batch), "round {round}");
        // One random bit of one random signature flipped: ed25519-dalek refuses it, so must
        // the batch.
        let i = rng.gen_range(0..batch.len());
        let bit = rng.gen_range(0..512);
        batch[i].signature[bit / 8] ^= 1 << (bit % 8);
        let sig = Signature::from_slice(&batch[i].signature).unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(
            batch[i].public_key.as_slice().try_into().unwrap(),
        )
        .unwrap();
        let single = match &batch[i].signed {
            Signed::Message(m) => key.verify_strict(m, &sig).is_ok(),
            Signed::Prehashed { .. } => key
                .verify_prehashed_strict(
                    Sha512::new().chain_update(b"identity update text"),
                    Some(CONTEXT),
                    &sig,
                )
                .is_ok(),
        };
        assert!(!single);
        assert!(!verify_all(&batch), "round {round}: bit {bit} of {i}");
    }
}

#[test]
fn small_order_and_non_canonical_points_are_refused_like_verify_strict() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let good = signed(&key, b"m");
    // The identity point (y = 1) as the key, then as R.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut weak_key = good.clone();
    weak_key.public_key = identity.to_vec();
    assert!(!verify_all(&[weak_key]));
    let mut weak_r = good.clone();
    weak_r.signature[..32].copy_from_slice(&identity);
    assert!(!verify_all(&[weak_r]));
    // y = p + 1 encodes the identity non-canonically; y = 2^255 - 1 is out of range.
    let mut p_plus_1 = [0xff; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    assert!(!canonical_y(&p_plus_1));
    assert!(!canonical_y(&[0xff; 32]));
    let mut p_minus_1 = p_plus_1;
    p_minus_1[0] = 0xec;
    assert!(canonical_y(&p_minus_1));
    assert!(canonical_y(&identity));
    // A non-canonical s (s + l) is refused, as verify_strict's parser does.
    let sig = Signature::from_slice(&good.signature).unwrap();
    assert!(key.verifying_key().verify_strict(b"m", &sig).is_ok());
    let mut s_plus_l = good.clone();
    add_group_order(&mut s_plus_l.signature[32..]);
    let bad = Signature::from_slice(&s_plus_l.signature).unwrap();
    assert!(key.verifying_key().verify_strict(b"m", &bad).is_err());
    assert!(!verify_all(&[s_plus_l]));
    assert!(verify_all(&[good]));
}

/// Adds the group order l = 2^252 + 27742317777372353535851937790883648493 to a
/// little-endian scalar (a signature's `s`, which stays below 2^256).
fn add_group_order(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
}

#[test]
fn deferring_records_only_inside_and_nests() {
    let sig = || DeferredSignature::new(b"m", b"k", b"s");
    assert!(!record(sig));
    let ((inner, n_inner), outer) = deferring(|| {
        assert!(record(sig));
        let ((), inner) = deferring(|| {
            assert!(record(sig));
        });
        assert!(record(sig));
        (inner, 1)
    });
    assert_eq!(n_inner, 1);
    assert_eq!(inner.len(), 1);
    assert_eq!(outer.len(), 2);
    assert!(!record(sig));
}

/// An item of [`batched`]'s test: signatures by one key over messages, some tampered.
struct Item {
    key: SigningKey,
    messages: Vec<&'static [u8]>,
    tampered: bool,
}

/// What a verifier built on [`record`] does: defers when it can, else checks now.
fn check(item: &Item) -> Result<usize, usize> {
    for (i, message) in item.messages.iter().enumerate() {
        let mut sig = item.key.sign(message).to_bytes();
        if item.tampered && i == item.messages.len() - 1 {
            sig[5] ^= 1;
        }
        let public = item.key.verifying_key();
        let recorded = record(|| DeferredSignature::new(message, public.as_bytes(), &sig));
        if !recorded
            && public
                .verify_strict(message, &Signature::from_bytes(&sig))
                .is_err()
        {
            return Err(i);
        }
    }
    Ok(item.messages.len())
}

#[test]
fn batched_redoes_only_the_items_whose_signatures_fail() {
    let items: Vec<Item> = keys(9)
        .into_iter()
        .enumerate()
        .map(|(i, key)| Item {
            key,
            messages: [&b"leaf"[..], b"package", b"update"][..i % 3].to_vec(),
            tampered: i == 4 || i == 8,
        })
        .collect();
    let calls: Vec<std::cell::Cell<usize>> = items.iter().map(|_| Default::default()).collect();
    let counted = |item: &Item| {
        let i = items.iter().position(|x| std::ptr::eq(x, item)).unwrap();
        calls[i].set(calls[i].get() + 1);
        check(item)
    };
    let one_by_one: Vec<_> = items.iter().map(check).collect();
    assert_eq!(one_by_one[4], Err(0));
    assert_eq!(one_by_one[8], Err(1));
    // Inside an outer deferral too: the items done again verify for real, recording nothing.
    let (together, outer) = deferring(|| batched(&items, counted));
    assert!(outer.is_empty());
    assert_eq!(together, one_by_one);
    let calls: Vec<usize> = calls.iter().map(|c| c.get()).collect();
    assert_eq!(calls, [1, 1, 1, 1, 2, 1, 1, 1, 2]);
    // Nothing bad, nothing redone; no item at all, nothing run.
    let good: Vec<Item> = keys(3)
        .into_iter()
        .map(|key| Item {
            key,
            messages: vec![b"m"],
            tampered: false,
        })
        .collect();
    assert_eq!(batched(&good, check), vec![Ok(1); 3]);
    assert!(batched(&[] as &[Item], check).is_empty());
}
