//! Trigger validation and evaluation (`src/chain/trigger.rs`, `src/chain/condition/`): a
//! tenant's event signature and condition JSON are compiled, then the compiled trigger
//! decodes a log, evaluates the condition and renders. Input: `event \0 condition \0 log`
//! (the log as `herald_fuzz::log_from_bytes` reads it; an empty event means a Transfer).
#![no_main]

use alloy_primitives::{Address, B256};
use herald::chain::trigger::LogMeta;
use herald::chain::TriggerSpec;
use libfuzzer_sys::fuzz_target;

const TRANSFER: &str = "Transfer(address indexed from, address indexed to, uint256 value)";

fuzz_target!(|data: &[u8]| {
    let p = herald_fuzz::parts(data, 3);
    let event = match std::str::from_utf8(p[0]) {
        Ok("") => TRANSFER.to_owned(),
        Ok(s) => s.to_owned(),
        Err(_) => return,
    };
    let Ok(condition) = serde_json::from_slice::<serde_json::Value>(p[1]) else {
        return;
    };
    let spec = TriggerSpec {
        chain_id: 1,
        address: Some("0x00000000000000000000000000000000000000aa".into()),
        addresses: vec![],
        event: serde_json::Value::String(event),
        condition: Some(condition),
        template: "{{ event.name }} {{ args }}".into(),
        confirmations: None,
        from_block: None,
    };
    let chain = herald_fuzz::chain();
    let Ok(trigger) = spec.validate(std::slice::from_ref(chain)) else {
        return;
    };
    if let Some(cond) = &trigger.condition {
        let _ = cond.eval(&trigger.event.sample_values());
    }
    let mut log = herald_fuzz::log_from_bytes(p[2]);
    // Most logs the watcher sees carry the event's own topic0; give the decoder that too.
    if let Some(first) = log.topics().first().copied() {
        if first.0[0] % 2 == 0 {
            let mut topics = log.topics().to_vec();
            topics[0] = trigger.event.topic0();
            log = alloy_primitives::LogData::new_unchecked(topics, log.data.clone());
        }
    }
    let meta = LogMeta {
        address: Address::repeat_byte(0xaa),
        tx_hash: B256::repeat_byte(1),
        block_number: 19_000_000,
        block_hash: B256::repeat_byte(2),
        log_index: 3,
    };
    let _ = trigger.evaluate(&log, &meta, chain);
});
