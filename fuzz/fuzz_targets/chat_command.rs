//! Chat command parsing (`src/inbound/commands.rs`) on any text an XMTP user can send.
#![no_main]

use herald::inbound::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Command::parse(text) {
        // A topic is one lowercased word: no whitespace, never empty.
        Command::TopicOn(topic) | Command::TopicOff(topic) => {
            assert!(!topic.is_empty());
            assert!(!topic.chars().any(char::is_whitespace));
            assert_eq!(topic, topic.to_lowercase());
        }
        _ => {}
    }
});
