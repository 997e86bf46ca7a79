use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, U256};
use serde_json::json;

use super::*;

const FUNCTION: &str = "getUserAccountData(address user) returns (uint256, uint256, uint256, uint256, uint256, uint256 healthFactor)";

fn chains() -> Vec<ChainConfig> {
    vec![ChainConfig::new(
        31337,
        "anvil",
        vec!["http://127.0.0.1:8545".into()],
    )]
}

fn spec(overrides: serde_json::Value) -> WatchSpec {
    let mut base = json!({
        "chain_id": 31337,
        "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "function": FUNCTION,
        "args": [{"arg": "user", "from": "subscriber"}],
        "condition": {"arg": "healthFactor", "op": "<", "value": "1100000000000000000"},
        "rearm": {"arg": "healthFactor", "op": ">", "value": "1300000000000000000"},
        "template": "{{ subscriber | short }}: health factor {{ outputs.healthFactor | units(18) }} at block {{ block.number }} ({{ outputs.out0 }})",
    });
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn a_health_factor_watch_compiles_encodes_and_renders() {
    let watch = spec(json!({})).validate(&chains()).unwrap();
    let user = Address::repeat_byte(0x42);
    let data = watch.calldata(user);
    assert_eq!(
        &data[..4],
        &alloy::primitives::keccak256("getUserAccountData(address)")[..4]
    );
    assert_eq!(&data[16..36], user.as_slice());
    let outputs: Vec<DynSolValue> = (0..6u64)
        .map(|i| DynSolValue::Uint(U256::from(i) * U256::from(10u64).pow(U256::from(17)), 256))
        .collect();
    let encoded = DynSolValue::Tuple(outputs.clone()).abi_encode_params();
    let decoded = watch.decode(&encoded).unwrap();
    assert_eq!(decoded, outputs);
    assert!(watch.condition.eval(&decoded), "0.5 < 1.1");
    assert!(!watch.rearm.as_ref().unwrap().eval(&decoded));
    let text = watch.render(&decoded, user, 7, &chains()[0]).unwrap();
    assert_eq!(text, "0x4242…4242: health factor 0.5 at block 7 (0)");
    assert!(matches!(watch.decode(&[]), Err(WatchCallError::Reverted)));
}

#[test]
fn every_problem_is_reported_with_its_field_and_code() {
    let bad = spec(json!({
        "chain_id": 5,
        "contract": "0x12",
        "args": [{"arg": "usr", "from": "subscriber"}],
        "condition": {"arg": "health", "op": "<", "value": 1},
        "rearm": {"arg": "healthFactor", "op": "<", "value": "x"},
        "every_blocks": 0,
        "template": "{{ outputs.healthFactor",
    }));
    let errs = bad.validate(&chains()).unwrap_err().0;
    let codes: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        codes,
        vec![
            ("chain_id", "unknown_chain"),
            ("contract", "invalid_address"),
            ("args[0].arg", "unknown_argument"),
            ("args", "unbound_argument"),
            ("condition.arg", "unknown_argument"),
            ("rearm.value", "invalid_literal"),
            ("every_blocks", "invalid_every_blocks"),
            ("template", "invalid_template"),
        ]
    );
}

#[test]
fn bindings_are_type_checked() {
    let f = "balanceOf(address owner, uint256 id) returns (uint256 balance)";
    let cond = json!({"arg": "balance", "op": "==", "value": 0});
    let ok = spec(
        json!({"function": f, "condition": cond, "rearm": null, "template": "{{ outputs.balance }}",
        "args": [{"arg": "owner", "from": "subscriber"}, {"arg": "id", "value": "7"}]}),
    );
    ok.validate(&chains()).unwrap();
    let cases = [
        (
            json!([{"arg": "id", "from": "subscriber"}, {"arg": "owner", "from": "subscriber"}]),
            "args[0].from",
            "binding_type_mismatch",
        ),
        (
            json!([{"arg": "owner", "from": "wallet"}, {"arg": "id", "value": 1}]),
            "args[0].from",
            "invalid_binding",
        ),
        (
            json!([{"arg": "owner", "from": "subscriber"}, {"arg": "id", "value": "seven"}]),
            "args[1].value",
            "invalid_literal",
        ),
        (
            json!([{"arg": "owner", "from": "subscriber"}, {"arg": "owner", "from": "subscriber"}]),
            "args[1].arg",
            "duplicate_binding",
        ),
        (
            json!([{"arg": "owner", "value": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}, {"arg": "id", "value": 1}]),
            "args",
            "subscriber_not_bound",
        ),
    ];
    for (args, field, code) in cases {
        let mut s = ok.clone();
        s.args = serde_json::from_value(args.clone()).unwrap();
        let errs = s.validate(&chains()).unwrap_err().0;
        assert!(
            errs.iter().any(|e| e.field == field && e.code == code),
            "{args}: {errs:?}"
        );
    }
}

#[test]
fn functions_without_outputs_or_with_unnamed_inputs_are_refused() {
    for (f, code) in [
        ("poke(address user)", "function_without_outputs"),
        ("f(address) returns (uint256 x)", "unnamed_input"),
        ("not a function", "invalid_function"),
    ] {
        let errs = spec(json!({"function": f}))
            .validate(&chains())
            .unwrap_err()
            .0;
        assert_eq!(errs[0].code, code, "{f}: {errs:?}");
    }
}

#[test]
fn a_template_naming_trigger_variables_fails_on_the_sample() {
    let errs = spec(json!({"template": "{{ args.healthFactor }}"}))
        .validate(&chains())
        .unwrap_err()
        .0;
    assert_eq!(errs[0].code, "template_render_failed", "{errs:?}");
}
