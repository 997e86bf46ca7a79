//! ChaCha20-Poly1305 (RFC 8439) from aws-lc, for openmls and the HPKE backend.
//!
//! XMTP's ciphersuite and its welcome wrapper both seal with ChaCha20-Poly1305: every new DM
//! seals its commit, its welcome's GroupInfo, the wrapped welcome and its first message.
//! RustCrypto's implementation took 2.0 / 3.1 / 6.7 µs for 200 B / 1.5 KB / 5 KB on the bench
//! machine, aws-lc's 0.29 / 0.86 / 2.3 µs for the same bytes (the same deterministic
//! function: equal outputs, tested against RustCrypto).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

/// Why a ChaCha20-Poly1305 operation failed: a key or nonce of the wrong length, or (opening)
/// a ciphertext that does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailed;

fn key_and_nonce(key: &[u8], nonce: &[u8]) -> Result<(LessSafeKey, Nonce), AeadFailed> {
    let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| AeadFailed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| AeadFailed)?;
    Ok((LessSafeKey::new(key), nonce))
}

/// `msg` sealed under a 32-byte key and 12-byte nonce: ciphertext ‖ 16-byte tag.
pub fn seal(key: &[u8], nonce: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, AeadFailed> {
    let (key, nonce) = key_and_nonce(key, nonce)?;
    let mut out = Vec::with_capacity(msg.len() + CHACHA20_POLY1305.tag_len());
    out.extend_from_slice(msg);
    key.seal_in_place_append_tag(nonce, Aad::from(aad), &mut out)
        .map_err(|_| AeadFailed)?;
    Ok(out)
}

/// The plaintext of a [`seal`] output (ciphertext ‖ tag) if it authenticates.
pub fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, AeadFailed> {
    let (key, nonce) = key_and_nonce(key, nonce)?;
    let mut out = ciphertext_and_tag.to_vec();
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut out)
        .map_err(|_| AeadFailed)?
        .len();
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use openmls_rust_crypto::RustCrypto;
    use openmls_traits::crypto::OpenMlsCrypto;
    use openmls_traits::types::AeadType;
    use rand::{Rng, RngCore};

    use super::*;

    #[test]
    fn equals_rustcrypto_and_refuses_what_does_not_authenticate() {
        let rust = RustCrypto::default();
        let mut rng = rand::thread_rng();
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 200, 1500, 5000] {
            let (mut key, mut nonce) = ([0u8; 32], [0u8; 12]);
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut nonce);
            let msg: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let aad: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
            let sealed = seal(&key, &nonce, &aad, &msg).unwrap();
            let reference = rust
                .aead_encrypt(AeadType::ChaCha20Poly1305, &key, &msg, &nonce, &aad)
                .unwrap();
            assert_eq!(sealed, reference, "{len} bytes");
            assert_eq!(open(&key, &nonce, &aad, &reference).unwrap(), msg);
            let mut tampered = sealed.clone();
            let i = rng.gen_range(0..tampered.len());
            tampered[i] ^= 1 << rng.gen_range(0..8);
            assert_eq!(open(&key, &nonce, &aad, &tampered), Err(AeadFailed));
            assert_eq!(open(&key, &nonce, b"other", &sealed), Err(AeadFailed));
        }
        assert_eq!(seal(&[0; 16], &[0; 12], b"", b"x"), Err(AeadFailed));
        assert_eq!(seal(&[0; 32], &[0; 24], b"", b"x"), Err(AeadFailed));
        assert_eq!(open(&[0; 32], &[0; 12], b"", &[0; 15]), Err(AeadFailed));
    }
}
