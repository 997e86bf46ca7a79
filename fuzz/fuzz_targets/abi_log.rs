//! ABI log decoding (`src/chain/event.rs`): an event definition (human-readable signature or
//! JSON fragment, as a tenant submits it) is parsed, then a log from the chain is decoded with
//! it. Input: `event \0 log` (the log as `herald_fuzz::log_from_bytes` reads it).
#![no_main]

use herald::chain::event::EventDef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = herald_fuzz::parts(data, 2);
    let Ok(text) = std::str::from_utf8(p[0]) else {
        return;
    };
    let input = serde_json::from_str::<serde_json::Value>(text)
        .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()));
    let Ok(event) = EventDef::parse(&input) else {
        return;
    };
    let _ = event.signature();
    let _ = event.sample_values();
    let mut log = herald_fuzz::log_from_bytes(p[1]);
    if let Some(first) = log.topics().first().copied() {
        if first.0[0] % 2 == 0 {
            let mut topics = log.topics().to_vec();
            topics[0] = event.topic0();
            log = alloy_primitives::LogData::new_unchecked(topics, log.data.clone());
        }
    }
    if let Ok(values) = event.decode(&log) {
        assert_eq!(values.len(), event.args().len());
        for v in &values {
            let _ = herald::chain::template::to_value(v);
        }
    }
});
