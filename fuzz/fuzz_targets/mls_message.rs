//! An `MLSMessage` from the network, as `Client::sync_dm` handles it: TLS decoding, then
//! `process` on a joined DM (decryption, commit/proposal handling); and the decrypted
//! payload's `PlaintextEnvelope` decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmtp_client::mls::content::decode_envelope;
use xmtp_client::mls::dm::process;

fuzz_target!(|data: &[u8]| {
    let _ = decode_envelope(data);
    let mut dm = herald_fuzz::dm().lock().unwrap_or_else(|e| e.into_inner());
    let dm = &mut *dm;
    let _ = process(&dm.bob.provider, &mut dm.bob_group, data);
});
