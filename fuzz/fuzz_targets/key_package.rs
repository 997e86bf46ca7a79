//! A key package fetched from (client) or uploaded to (devnode) the node: the client's full
//! validation against an expected installation and inbox, and the devnode's header parsing
//! and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmtp_client::mls::dm::validate_key_package;
use xmtp_devnode::mls_wire;

fuzz_target!(|data: &[u8]| {
    let parsed = mls_wire::parse_key_package(data);
    let validated = mls_wire::validate_key_package(data);
    // Validation only accepts what parses, and names the same installation.
    if let Ok(v) = &validated {
        let p = parsed.as_ref().expect("a validated key package parses");
        assert_eq!(p.installation_key, v.installation_key);
    }
    let dm = herald_fuzz::dm().lock().unwrap_or_else(|e| e.into_inner());
    let client = validate_key_package(
        &dm.alice.provider,
        data,
        &dm.bob.key.public_key(),
        &dm.bob.inbox,
    );
    if client.is_ok() {
        assert!(
            validated.is_ok(),
            "the node refuses what the client accepts"
        );
    }
});
