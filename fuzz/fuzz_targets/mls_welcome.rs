//! A welcome from the network: HPKE unwrapping (TLS `HPKECiphertext` + metadata) with the
//! key package's init key, then `join` on the unwrapped bytes.
//!
//! Input: `data \0 welcome_metadata`; the raw input is also joined directly, so the fuzzer
//! reaches the MLS welcome parser without having to break HPKE.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmtp_client::mls::dm::join;
use xmtp_client::mls::provider::XmtpProvider;
use xmtp_client::mls::welcome::unwrap_welcome;

fuzz_target!(|data: &[u8]| {
    let p = herald_fuzz::parts(data, 2);
    let (init_key, fresh) = {
        let dm = herald_fuzz::dm().lock().unwrap_or_else(|e| e.into_inner());
        (dm.bob_init_key.clone(), XmtpProvider::new())
    };
    if let Ok((welcome, _metadata)) = unwrap_welcome(p[0], p[1], &init_key) {
        let _ = join(&fresh, &welcome);
    }
    let _ = join(&fresh, data);
});
