//! The other mainnet-shaped events end to end: bool, string and array arguments, JSON ABI
//! fragments, and logs that share a topic0 but not the layout.

use crate::harness::*;
use alloy::primitives::{Address, U256};
use herald::chain::store::MemoryChainStore;
use herald::chain::TriggerSpec;
use serde_json::json;
use std::sync::Arc;

fn spec(
    contract: Address,
    event: serde_json::Value,
    condition: Option<serde_json::Value>,
    template: &str,
) -> TriggerSpec {
    TriggerSpec {
        chain_id: CHAIN_ID,
        address: None,
        addresses: vec![contract.to_string(), Address::repeat_byte(0x99).to_string()],
        event,
        condition,
        template: template.into(),
        confirmations: Some(1),
        from_block: None,
    }
}

#[tokio::test]
async fn governor_proposal_and_aave_liquidation_render_strings_arrays_and_bools() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    let proposal = json!("ProposalCreated(uint256 proposalId, address proposer, address[] targets, uint256[] values, string[] signatures, bytes[] calldatas, uint256 voteStart, uint256 voteEnd, string description)");
    add_trigger(
        &store,
        "gov",
        spec(
            chain.contract,
            proposal,
            Some(json!({"not": {"arg": "description", "op": "==", "value": "ignore me"}})),
            "Proposal #{{ args.proposalId }}: {{ args.description }} ({{ args.targets | length }} target{% if args.targets | length != 1 %}s{% endif %}, vote ends at block {{ args.voteEnd }})",
        ),
        &config,
    );
    // The Aave event as a JSON ABI fragment, filtered on a bool.
    let liquidation = json!({"type": "event", "name": "LiquidationCall", "anonymous": false, "inputs": [
        {"name": "collateralAsset", "type": "address", "indexed": true},
        {"name": "debtAsset", "type": "address", "indexed": true},
        {"name": "user", "type": "address", "indexed": true},
        {"name": "debtToCover", "type": "uint256", "indexed": false},
        {"name": "liquidatedCollateralAmount", "type": "uint256", "indexed": false},
        {"name": "liquidator", "type": "address", "indexed": false},
        {"name": "receiveAToken", "type": "bool", "indexed": false}]});
    add_trigger(
        &store,
        "aave",
        spec(
            chain.contract,
            liquidation,
            Some(json!({"arg": "receiveAToken", "op": "==", "value": true})),
            "Liquidation of {{ args.user | short }}: {{ args.debtToCover | units(6) }} USDC by {{ args.liquidator | explorer_address }}",
        ),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();

    let e = chain.emitter();
    let (user, liquidator) = (Address::repeat_byte(0x44), Address::repeat_byte(0x55));
    for (id, text) in [(7u64, "Raise the fee to 0.3%"), (8, "ignore me")] {
        chain
            .transact(e.emitProposal(U256::from(id), text.into()))
            .await;
    }
    for receive in [true, false] {
        chain
            .transact(e.emitLiquidation(
                Address::repeat_byte(1),
                Address::repeat_byte(2),
                user,
                U256::from(1_234_500_000u64),
                U256::from(1u8),
                liquidator,
                receive,
            ))
            .await;
    }
    chain.mine(1).await;
    run_until_idle(&mut w).await;

    let announced = store.announced();
    let texts: Vec<&str> = announced.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("Proposal #7: Raise the fee to 0.3% (1 target, vote ends at block "),
        "{}",
        texts[0]
    );
    assert_eq!(
        texts[1],
        format!(
            "Liquidation of 0x4444…4444: 1234.5 USDC by https://explorer.test/address/{}",
            liquidator.to_checksum(None)
        )
    );
}

#[tokio::test]
async fn logs_with_the_same_topic0_but_another_layout_are_skipped_without_stalling() {
    let chain = Chain::start().await;
    let config = chain.config();
    let store = Arc::new(MemoryChainStore::new());
    // Same canonical signature (so same topic0) as the contract's Transfer, but nothing
    // indexed: real logs carry 3 topics and do not decode with this layout.
    let wrong = json!("Transfer(address from, address to, uint256 value)");
    add_trigger(
        &store,
        "wrong",
        spec(chain.contract, wrong, None, "{{ args.value }}"),
        &config,
    );
    add_trigger(
        &store,
        "right",
        transfer_trigger(chain.contract, 1),
        &config,
    );
    let mut w = watcher(config, store.clone());
    w.run_once().await.unwrap();
    chain
        .transact(chain.emitter().emitTransfer(
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            U256::from(77u8),
        ))
        .await;
    chain.mine(1).await;
    run_until_idle(&mut w).await;
    let got: Vec<(String, String)> = store
        .announced()
        .into_iter()
        .map(|a| (a.key.trigger_id, a.text))
        .collect();
    assert_eq!(got, vec![("right".to_owned(), "Transfer 77".to_owned())]);
}
