//! The aws-lc X25519 backend against RustCrypto's.

use super::*;
use hpke_rs::rustcrypto::HpkeRustCrypto;
use hpke_rs_crypto::HpkeCrypto;
use rand::RngCore;

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

#[test]
fn x25519_agrees_with_rustcrypto() {
    for _ in 0..32 {
        let (a, b) = (random_key(), random_key());
        let kem = KemAlgorithm::DhKem25519;
        let pub_a = AwsLcX25519::secret_to_public(kem, &a).unwrap();
        let pub_b = AwsLcX25519::secret_to_public(kem, &b).unwrap();
        assert_eq!(pub_a, HpkeRustCrypto::secret_to_public(kem, &a).unwrap());
        let ours = AwsLcX25519::dh(kem, &pub_b, &a).unwrap();
        assert_eq!(ours, HpkeRustCrypto::dh(kem, &pub_b, &a).unwrap());
        assert_eq!(ours, AwsLcX25519::dh(kem, &pub_a, &b).unwrap());
    }
}

#[test]
fn x25519_refuses_what_rustcrypto_refuses() {
    let kem = KemAlgorithm::DhKem25519;
    let sk = random_key();
    // The all-zero point has order 1: its shared secret is all zeros.
    assert!(AwsLcX25519::dh(kem, &[0u8; 32], &sk).is_err());
    assert!(HpkeRustCrypto::dh(kem, &[0u8; 32], &sk).is_err());
    assert!(AwsLcX25519::dh(kem, &[9u8; 31], &sk).is_err());
    assert!(AwsLcX25519::secret_to_public(kem, &[1u8; 31]).is_err());
}

#[test]
fn hpke_interoperates_with_rustcrypto_both_ways() {
    let config = || {
        HpkeConfig(
            HpkeKemType::DhKem25519,
            HpkeKdfType::HkdfSha256,
            HpkeAeadType::ChaCha20Poly1305,
        )
    };
    let ours = XmtpCrypto::default();
    let theirs = RustCrypto::default();
    let keys = theirs.derive_hpke_keypair(config(), &random_key()).unwrap();
    let same = ours.derive_hpke_keypair(config(), &keys.private).unwrap();
    let again = theirs.derive_hpke_keypair(config(), &keys.private).unwrap();
    assert_eq!(same.public, again.public);
    let sealed = ours
        .hpke_seal(config(), &keys.public, b"info", b"aad", b"hello")
        .unwrap();
    let opened = theirs
        .hpke_open(config(), &sealed, &keys.private, b"info", b"aad")
        .unwrap();
    assert_eq!(opened, b"hello");
    let sealed = theirs
        .hpke_seal(config(), &keys.public, b"info", b"aad", b"back")
        .unwrap();
    let opened = ours
        .hpke_open(config(), &sealed, &keys.private, b"info", b"aad")
        .unwrap();
    assert_eq!(opened, b"back");
    let (enc, secret) = ours
        .hpke_setup_sender_and_export(config(), &keys.public, b"i", b"ctx", 32)
        .unwrap();
    let theirs_secret = theirs
        .hpke_setup_receiver_and_export(config(), &enc, &keys.private, b"i", b"ctx", 32)
        .unwrap();
    assert_eq!(secret.to_vec(), theirs_secret.to_vec());
}

#[test]
fn a_kept_key_serves_only_its_own_secret() {
    let kem = KemAlgorithm::DhKem25519;
    let (a, b) = (random_key(), random_key());
    let pub_a = HpkeRustCrypto::secret_to_public(kem, &a).unwrap();
    let pub_b = HpkeRustCrypto::secret_to_public(kem, &b).unwrap();
    let ab = HpkeRustCrypto::dh(kem, &pub_b, &a).unwrap();
    // Every order of uses: derive then agree (encapsulation), agree then derive
    // (decapsulation), and keys interleaved, each against the reference.
    assert_eq!(AwsLcX25519::secret_to_public(kem, &a).unwrap(), pub_a);
    assert_eq!(AwsLcX25519::dh(kem, &pub_b, &a).unwrap(), ab);
    assert_eq!(AwsLcX25519::dh(kem, &pub_a, &b).unwrap(), ab);
    assert_eq!(AwsLcX25519::secret_to_public(kem, &b).unwrap(), pub_b);
    assert_eq!(AwsLcX25519::secret_to_public(kem, &a).unwrap(), pub_a);
    assert_eq!(AwsLcX25519::secret_to_public(kem, &b).unwrap(), pub_b);
    assert_eq!(AwsLcX25519::dh(kem, &pub_a, &b).unwrap(), ab);
    assert_eq!(AwsLcX25519::dh(kem, &pub_a, &b).unwrap(), ab);
    // A secret differing in one bit from the kept one is parsed afresh.
    let mut a2 = a;
    a2[0] ^= 0x08; // a bit clamping keeps
    AwsLcX25519::secret_to_public(kem, &a).unwrap();
    let pub_a2 = AwsLcX25519::secret_to_public(kem, &a2).unwrap();
    assert_ne!(pub_a2, pub_a);
    assert_eq!(pub_a2, HpkeRustCrypto::secret_to_public(kem, &a2).unwrap());
    // A refused peer key does not poison the kept key.
    AwsLcX25519::secret_to_public(kem, &a).unwrap();
    assert!(AwsLcX25519::dh(kem, &[0u8; 32], &a).is_err());
    assert_eq!(AwsLcX25519::dh(kem, &pub_b, &a).unwrap(), ab);
}
