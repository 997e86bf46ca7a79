//! Watch evaluation throughput: 10,000 subscribers of one health-factor watch evaluated at one
//! pinned block through `aggregate3` batches against anvil (the test aggregator and mock
//! lending pool from `testdata/chain/watch`), on a SQLite store, with the service's own
//! evaluator (`workers::watch_evaluator`) on a 2-thread runtime. Goal: every subscriber
//! evaluated within one block interval (12 s on Ethereum) on 2 cores.
//!
//! Rounds: all healthy (nothing written), then 1% of the wallets below the threshold (100
//! alerts: state rows and one-recipient announcements written), then steady again. The judged
//! figure is the slowest round. Needs anvil (`scripts/setup-anvil.sh` or `ANVIL_BIN`).
//! Knob: `BENCH_WATCH_SUBSCRIBERS` (default 10,000).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[path = "summary.rs"]
mod summary;

use alloy::primitives::{Address, U160, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use herald::chain::watch::{ArgBinding, WatchSpec};
use herald::chain::ChainConfig;
use herald::config::{Config, DatabaseUrl};
use herald::domain::{self, ChannelId, TenantId, WatchId};
use herald::store::{NewChannel, NewTenant, NewWatch, Store};
use herald::workers::watch_evaluator::Evaluator;
use herald::workers::Outcome;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        Aggregator,
        "testdata/chain/watch/Aggregator.json"
    );
    alloy::sol!(
        #[sol(rpc)]
        LendingPool,
        "testdata/chain/watch/LendingPool.json"
    );
}
use bindings::{Aggregator, LendingPool};

/// Ethereum's block interval: the budget for evaluating every subscriber once.
const BLOCK_INTERVAL: Duration = Duration::from_secs(12);
/// Wallets per `setHealthFactors` transaction (about 22k gas each, under anvil's 30M limit).
const SETUP_CHUNK: usize = 500;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn anvil_bin() -> PathBuf {
    std::env::var("ANVIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/anvil/node_modules/.bin/anvil")
        })
}

fn hf(hundredths: u64) -> U256 {
    U256::from(hundredths) * U256::from(10u64).pow(U256::from(16))
}

async fn run() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_WATCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut anvil = Command::new(anvil_bin())
        .args(["--port", "0", "--host", "127.0.0.1", "--chain-id", "31337"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "anvil ({}): {e}; run scripts/setup-anvil.sh",
                anvil_bin().display()
            )
        })?;
    let mut lines = BufReader::new(anvil.stdout.take().expect("piped")).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("anvil exited"))?;
        if let Some(addr) = line.trim().strip_prefix("Listening on ") {
            break format!("http://{addr}");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let provider: DynProvider = ProviderBuilder::new().connect_http(url.parse()?).erased();
    let from = provider.get_accounts().await?[0];
    let aggregator = Aggregator::deploy_builder(provider.clone())
        .from(from)
        .deploy()
        .await?;
    let pool_address = LendingPool::deploy_builder(provider.clone())
        .from(from)
        .deploy()
        .await?;
    let pool = LendingPool::new(pool_address, provider.clone());
    let wallets: Vec<Address> = (1..=n as u64)
        .map(|i| Address::from(U160::from(i) << 40))
        .collect();
    for chunk in wallets.chunks(SETUP_CHUNK) {
        pool.setHealthFactors(chunk.to_vec(), hf(200))
            .from(from)
            .send()
            .await?
            .get_receipt()
            .await?;
    }

    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.database_url =
        DatabaseUrl::new(format!("sqlite:{}", dir.path().join("bench.db").display()));
    let store = herald::store::connect(&config).await?;
    let mut chain = ChainConfig::new(31337, "anvil", vec![url]);
    chain.requests_per_second = 0;
    chain.multicall_address = aggregator.to_string();
    let watch = setup_store(store.as_ref(), &chain, pool_address, &wallets).await?;
    let lease = store
        .triggers()
        .acquire_chain_lease(chain.chain_id, "bench", Duration::from_secs(3600))
        .await?
        .ok_or_else(|| anyhow::anyhow!("lease taken"))?;
    let mut evaluator = Evaluator::new(store.clone(), chain.clone(), lease)?;

    let mut slowest = Duration::ZERO;
    for (round, lowered) in [(1, 0), (2, n / 100), (3, 0)] {
        if lowered > 0 {
            pool.setHealthFactors(wallets[..lowered].to_vec(), hf(100))
                .from(from)
                .send()
                .await?
                .get_receipt()
                .await?;
        } else {
            let _: serde_json::Value = provider.raw_request("anvil_mine".into(), ("0x1",)).await?;
        }
        let started = Instant::now();
        let outcome = evaluator.run_once().await?;
        let took = started.elapsed();
        anyhow::ensure!(
            outcome == Outcome::Worked(n as u64),
            "round {round}: {outcome:?}"
        );
        slowest = slowest.max(took);
        println!(
            "watch round {round} ({n} subscribers, {lowered} crossing): {took:.2?}, {:.0} evaluations/s",
            n as f64 / took.as_secs_f64()
        );
    }
    let got = store
        .get_watch(&watch.0, &watch.1, &watch.2)
        .await?
        .ok_or_else(|| anyhow::anyhow!("watch gone"))?;
    anyhow::ensure!(got.alerted == (n / 100) as u64, "alerted {}", got.alerted);
    let rate = n as f64 / slowest.as_secs_f64();
    println!(
        "watch evaluations: slowest round {slowest:.2?} for {n} subscribers = {rate:.0}/s (goal: {n} within one {}-s block interval)",
        BLOCK_INTERVAL.as_secs()
    );
    summary::record(
        "watch evaluations/s (10,000 subscribers, anvil, aggregate3 x500)",
        "10,000 per block interval (12 s)",
        &format!("{rate:.0}/s ({n} in {slowest:.2?})"),
        Some(n >= 10_000 && slowest <= BLOCK_INTERVAL),
    );
    Ok(())
}

/// A tenant, a channel with every wallet subscribed, and the health-factor watch.
async fn setup_store(
    store: &dyn Store,
    chain: &ChainConfig,
    pool: Address,
    wallets: &[Address],
) -> anyhow::Result<(TenantId, ChannelId, WatchId)> {
    let tenant = TenantId::generate();
    store
        .create_tenant(&NewTenant {
            id: tenant.clone(),
            name: "bench".into(),
            key_hash: "0".repeat(64),
        })
        .await?;
    let channel = ChannelId::generate();
    store
        .create_channel(&NewChannel {
            id: channel.clone(),
            tenant: tenant.clone(),
            name: "positions".into(),
            description: None,
            address: domain::Address::from_trusted(format!("{:#x}", Address::repeat_byte(0x42))),
            wallet_key_sealed: vec![0; 32],
        })
        .await?;
    let addresses: Vec<domain::Address> = wallets
        .iter()
        .map(|w| domain::Address::from_trusted(format!("{w:#x}")))
        .collect();
    for chunk in addresses.chunks(1_000) {
        store.subscribe_many(&channel, chunk).await?;
    }
    let spec = WatchSpec {
        chain_id: chain.chain_id,
        contract: pool.to_string(),
        function: "getUserAccountData(address user) returns (uint256, uint256, uint256, uint256, uint256, uint256 healthFactor)".into(),
        args: vec![ArgBinding {
            arg: "user".into(),
            from: Some("subscriber".into()),
            value: None,
        }],
        condition: serde_json::json!({"arg": "healthFactor", "op": "<", "value": "1100000000000000000"}),
        rearm: Some(serde_json::json!({"arg": "healthFactor", "op": ">", "value": "1300000000000000000"})),
        template: "Health factor {{ outputs.healthFactor | units(18) }} for {{ subscriber | short }}".into(),
        topic: None,
        every_blocks: 1,
        cooldown_blocks: 0,
    };
    spec.validate(std::slice::from_ref(chain))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = WatchId::generate();
    store
        .create_watch(&NewWatch {
            id: id.clone(),
            tenant: tenant.clone(),
            channel: channel.clone(),
            spec,
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("channel missing"))?;
    Ok((tenant, channel, id))
}
