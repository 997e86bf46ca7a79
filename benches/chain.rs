//! Throughput of the trigger engine's hot path: decode + condition + render for 100,000
//! synthetic Uniswap V3 `Swap` logs (goal: >= 50,000 logs/s on 2 cores). RPC is not involved;
//! the anvil tests cover that path. Run with `cargo bench --bench chain`.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, LogData, B256, I256, U256};
use herald::chain::matcher::{ActiveTrigger, TriggerSet};
use herald::chain::trigger::LogMeta;
use herald::chain::{ChainConfig, TriggerSpec};
use std::sync::Arc;
use std::time::Instant;

const LOGS: usize = 100_000;
const SWAP: &str = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)";

fn main() {
    let pool = Address::repeat_byte(0x77);
    let mut chain = ChainConfig::new(1, "mainnet", vec!["http://127.0.0.1:8545".into()]);
    chain.explorer_url = Some("https://etherscan.io".into());
    let logs: Vec<(LogData, LogMeta)> = (0..LOGS)
        .map(|i| synthetic(i, pool, swap_topic0()))
        .collect();
    // Scenario 1: a condition that half of the logs pass; scenario 2: every log rendered.
    let condition = serde_json::json!({"any": [{"arg": "amount0", "op": ">=", "value": "1000000000000000000"}, {"arg": "amount1", "op": "<", "value": "-5000000000000000000"}]});
    run("condition passes 1/2", &chain, pool, Some(condition), &logs);
    run("no condition, all rendered", &chain, pool, None, &logs);
}

fn swap_topic0() -> B256 {
    alloy::json_abi::Event::parse(SWAP)
        .expect("swap signature")
        .selector()
}

fn run(
    label: &str,
    chain: &ChainConfig,
    pool: Address,
    condition: Option<serde_json::Value>,
    logs: &[(LogData, LogMeta)],
) {
    let spec = TriggerSpec {
        chain_id: 1,
        address: Some(pool.to_string()),
        addresses: Vec::new(),
        event: SWAP.into(),
        condition,
        template: "Swap on {{ chain.name }}: {{ args.amount0 | units(18) }} in / {{ args.amount1 | units(6) }} out by {{ args.sender | short }} {{ tx.hash | explorer_tx }} (block {{ block.number }})".into(),
        confirmations: Some(12),
        from_block: None,
    };
    let compiled = spec
        .validate(std::slice::from_ref(chain))
        .expect("bench trigger validates");
    let set = TriggerSet::new(vec![Arc::new(ActiveTrigger {
        id: "bench".into(),
        revision: 1,
        start_block: 0,
        from_block: None,
        compiled,
    })]);
    let mut out = Vec::with_capacity(LOGS);
    // Warm-up pass so allocator and caches are in steady state.
    for (data, meta) in logs.iter().take(1_000) {
        set.match_log(data, meta, chain, &mut out);
    }
    out.clear();

    let start = Instant::now();
    let mut matched = 0;
    for (data, meta) in logs {
        matched += set.match_log(data, meta, chain, &mut out);
    }
    let elapsed = start.elapsed();
    let rate = LOGS as f64 / elapsed.as_secs_f64();
    println!("chain engine [{label}]: {LOGS} Swap logs decoded+matched+rendered in {elapsed:.2?}");
    println!(
        "  matched: {matched} ({} rendered texts, e.g. {:?})",
        out.len(),
        out.first().map(|c| c.text.as_str()).unwrap_or("")
    );
    println!("  throughput: {rate:.0} logs/s (goal >= 50000 logs/s)");
}

fn synthetic(i: usize, pool: Address, topic0: B256) -> (LogData, LogMeta) {
    let amount0 = if i.is_multiple_of(2) {
        I256::try_from(2_000_000_000_000_000_000i128 + i as i128).unwrap()
    } else {
        I256::try_from(i as i64).unwrap()
    };
    let body = DynSolValue::Tuple(vec![
        DynSolValue::Int(amount0, 256),
        DynSolValue::Int(-I256::try_from(i as i64 * 1_000_000).unwrap(), 256),
        DynSolValue::Uint(U256::from(1u8) << 96, 160),
        DynSolValue::Uint(U256::from(i as u64 * 7), 128),
        DynSolValue::Int(I256::try_from(-(i as i64 % 887_272)).unwrap(), 24),
    ])
    .abi_encode_params();
    let topics = vec![
        topic0,
        Address::repeat_byte(0x11).into_word(),
        Address::with_last_byte((i % 251) as u8).into_word(),
    ];
    let meta = LogMeta {
        address: pool,
        tx_hash: B256::from(U256::from(i as u64)),
        block_number: 20_000_000 + (i / 100) as u64,
        block_hash: B256::from(U256::from(i as u64 / 100)),
        log_index: (i % 100) as u64,
    };
    (LogData::new_unchecked(topics, body.into()), meta)
}
