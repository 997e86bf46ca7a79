//! Announcement templates (`src/chain/template/`): a tenant's source is compiled in the
//! sandbox and rendered against a log, under the fuel limit and the output cap. Input:
//! `source \0 memo`; the memo becomes the log's string and bytes arguments.
//! Run with `-rss_limit_mb` (the Makefile sets 2048): a template must not be able to exhaust
//! memory, so an out-of-memory is a finding like a panic.
#![no_main]

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, B256, U256};
use herald::chain::template::{RenderInput, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = herald_fuzz::parts(data, 2);
    let Ok(source) = std::str::from_utf8(p[0]) else {
        return;
    };
    let Ok(template) = Template::compile(source) else {
        return;
    };
    let memo = String::from_utf8_lossy(p[1]).into_owned();
    let mut word = [0u8; 32];
    let take = p[1].len().min(32);
    word[..take].copy_from_slice(&p[1][..take]);
    let args = [
        DynSolValue::Address(Address::repeat_byte(0x11)),
        DynSolValue::Address(Address::repeat_byte(0x22)),
        DynSolValue::Uint(U256::from_be_bytes(word), 256),
        DynSolValue::String(memo),
        DynSolValue::Bytes(p[1].to_vec()),
        DynSolValue::Array(vec![DynSolValue::Uint(U256::from(7u8), 8); 3]),
    ];
    let names = ["from", "to", "value", "memo", "data", "list"];
    let chain = herald_fuzz::chain();
    let input = RenderInput {
        event_name: "Note",
        arg_names: &names,
        args: &args,
        tx_hash: B256::repeat_byte(1),
        block_number: 19_000_000,
        block_hash: B256::repeat_byte(2),
        log_address: Address::repeat_byte(0xaa),
        log_index: 3,
        chain_id: chain.chain_id,
        chain_name: &chain.name,
        explorer_url: chain.explorer_url.as_deref(),
    };
    let _ = template.render(&input);
});
