//! Test harness: anvil process, contract deployment, event emission, watcher driving.

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{aliases::I24, Address, Bytes, B256, I256, U160};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use herald::chain::rpc::RetryPolicy;
use herald::chain::store::{Announced, ChainStore, MemoryChainStore, TriggerRecord};
use herald::chain::{ChainConfig, Outcome, TriggerSpec, Watcher};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod bindings {
    // Generated bindings mirror the contract's 7-argument functions.
    #![allow(clippy::too_many_arguments)]
    alloy::sol!(
        #[sol(rpc)]
        EventEmitter,
        "testdata/chain/EventEmitter.json"
    );
}
use bindings::EventEmitter;

pub const CHAIN_ID: u64 = 31337;
pub const SWAP: &str = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)";
pub const TRANSFER: &str = "Transfer(address indexed from, address indexed to, uint256 value)";
pub const SWAP_TEMPLATE: &str = "Swap {{ args.amount0 | units(18) }} / {{ args.amount1 }} at block {{ block.number }} on {{ chain.name }}";

/// A running anvil, killed when dropped.
pub struct Anvil {
    _child: Child,
    pub url: String,
}

fn anvil_bin() -> PathBuf {
    let hint = "run scripts/setup-anvil.sh (installs @foundry-rs/anvil-linux-amd64 1.7.1 into \
                tools/anvil/) or set ANVIL_BIN=/path/to/anvil";
    if let Ok(bin) = std::env::var("ANVIL_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.exists(),
            "ANVIL_BIN={} does not exist: {hint}",
            bin.display()
        );
        return bin;
    }
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/anvil/node_modules/.bin/anvil");
    assert!(local.exists(), "anvil is not installed: {hint}");
    local
}

impl Anvil {
    /// Starts anvil on a free port and waits for its "Listening on" line.
    pub async fn start() -> Self {
        let mut child = Command::new(anvil_bin())
            .args([
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                "--chain-id",
                &CHAIN_ID.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn anvil");
        let mut lines = BufReader::new(child.stdout.take().expect("anvil stdout")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read anvil stdout") {
                if let Some(addr) = line.trim().strip_prefix("Listening on ") {
                    return addr.to_owned();
                }
            }
            panic!("anvil exited before listening");
        })
        .await
        .expect("anvil did not start within 20 s");
        // Keep draining stdout so anvil never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            url: format!("http://{addr}"),
        }
    }
}

/// anvil + deployed EventEmitter + a client for sending transactions from an unlocked account.
pub struct Chain {
    pub anvil: Anvil,
    pub provider: DynProvider,
    pub from: Address,
    pub contract: Address,
}

impl Chain {
    pub async fn start() -> Self {
        let anvil = Anvil::start().await;
        let provider = ProviderBuilder::new()
            .connect_http(anvil.url.parse().unwrap())
            .erased();
        let from = provider.get_accounts().await.unwrap()[0];
        let contract = EventEmitter::deploy_builder(provider.clone())
            .from(from)
            .deploy()
            .await
            .expect("deploy EventEmitter");
        Self {
            anvil,
            provider,
            from,
            contract,
        }
    }

    pub fn config(&self) -> ChainConfig {
        chain_config(vec![self.anvil.url.clone()])
    }

    pub fn emitter(&self) -> EventEmitter::EventEmitterInstance<DynProvider> {
        EventEmitter::new(self.contract, self.provider.clone())
    }

    /// Sends a contract call from the funded account and waits for its receipt (anvil
    /// automines, so the receipt is there once the transaction is).
    pub async fn transact<P: Provider, D: CallDecoder>(
        &self,
        call: CallBuilder<P, D>,
    ) -> TransactionReceipt {
        call.from(self.from)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
    }

    /// Emits one Swap in its own transaction (one block, anvil automines); returns (tx, block).
    pub async fn swap(&self, amount0: i128, amount1: i128) -> (B256, u64) {
        let receipt = self
            .transact(self.emitter().emitSwap(
                Address::repeat_byte(0x11),
                Address::repeat_byte(0x22),
                I256::try_from(amount0).unwrap(),
                I256::try_from(amount1).unwrap(),
                U160::from(1u64) << 96,
                123_456_789u128,
                I24::try_from(-200_000i32).unwrap(),
            ))
            .await;
        (receipt.transaction_hash, receipt.block_number.unwrap())
    }

    /// `n` Swap logs in one transaction (amount0 = i, amount1 = -i).
    pub async fn swap_batch(&self, n: u64) -> (B256, u64) {
        let receipt = self
            .transact(
                self.emitter()
                    .emitSwapBatch(alloy::primitives::U256::from(n), Address::repeat_byte(0x33)),
            )
            .await;
        (receipt.transaction_hash, receipt.block_number.unwrap())
    }

    pub async fn mine(&self, blocks: u64) {
        let _: serde_json::Value = self
            .provider
            .raw_request("anvil_mine".into(), (format!("0x{blocks:x}"),))
            .await
            .unwrap();
    }

    pub async fn head(&self) -> u64 {
        self.provider.get_block_number().await.unwrap()
    }

    /// Replaces the last `depth` blocks; `reinclude` lists (raw signed tx, block offset).
    pub async fn reorg(&self, depth: u64, reinclude: Vec<(Bytes, u64)>) {
        let txs: Vec<serde_json::Value> = reinclude
            .into_iter()
            .map(|(raw, offset)| serde_json::json!([raw, offset]))
            .collect();
        let _: serde_json::Value = self
            .provider
            .raw_request("anvil_reorg".into(), (depth, txs))
            .await
            .unwrap();
    }

    pub async fn raw_tx(&self, hash: B256) -> Bytes {
        self.provider
            .raw_request("eth_getRawTransactionByHash".into(), (hash,))
            .await
            .unwrap()
    }
}

pub fn chain_config(rpc_urls: Vec<String>) -> ChainConfig {
    let mut config = ChainConfig::new(CHAIN_ID, "anvil", rpc_urls);
    config.confirmations = 1;
    config.poll_interval_ms = 50;
    config.requests_per_second = 0;
    config.reorg_window = 64;
    config.request_timeout_ms = 5_000;
    config.explorer_url = Some("https://explorer.test".into());
    config
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    }
}

pub fn swap_trigger(
    contract: Address,
    condition: Option<serde_json::Value>,
    confirmations: u64,
) -> TriggerSpec {
    TriggerSpec {
        chain_id: CHAIN_ID,
        address: Some(contract.to_string()),
        addresses: Vec::new(),
        event: serde_json::Value::String(SWAP.into()),
        condition,
        template: SWAP_TEMPLATE.into(),
        confirmations: Some(confirmations),
        from_block: None,
    }
}

pub fn transfer_trigger(contract: Address, confirmations: u64) -> TriggerSpec {
    TriggerSpec {
        chain_id: CHAIN_ID,
        address: Some(contract.to_string()),
        addresses: Vec::new(),
        event: serde_json::Value::String(TRANSFER.into()),
        condition: None,
        template: "Transfer {{ args.value }}".into(),
        confirmations: Some(confirmations),
        from_block: None,
    }
}

/// Registers a trigger the way the service will: validated first, starting at block 0 here.
pub fn add_trigger(store: &MemoryChainStore, id: &str, spec: TriggerSpec, config: &ChainConfig) {
    spec.validate(std::slice::from_ref(config))
        .expect("trigger validates");
    store.put_trigger(
        CHAIN_ID,
        TriggerRecord {
            id: id.into(),
            revision: 1,
            spec,
            start_block: 0,
            scanned_to: None,
        },
    );
}

pub fn watcher(config: ChainConfig, store: Arc<dyn ChainStore>) -> Watcher {
    Watcher::with_retry_policy(config, store, fast_retries()).unwrap()
}

/// Steps until the watcher reports `Idle`; retryable errors are tolerated (counted), others panic.
pub async fn run_until_idle(w: &mut Watcher) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for _ in 0..500 {
        match w.run_once().await {
            Ok(Outcome::Idle) => return outcomes,
            Ok(o) => outcomes.push(o),
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("watcher failed: {e}"),
        }
    }
    panic!("watcher never became idle: {outcomes:?}");
}

pub fn texts(announced: &[Announced]) -> Vec<String> {
    announced.iter().map(|a| a.text.clone()).collect()
}
