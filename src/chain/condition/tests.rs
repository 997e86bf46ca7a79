//! Condition compile and evaluation tests.

use super::*;
use serde_json::json;

fn swap() -> EventDef {
    EventDef::parse(&json!("Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)")).unwrap()
}

fn args(amount1: i64, sender: Address) -> Vec<DynSolValue> {
    vec![
        DynSolValue::Address(sender),
        DynSolValue::Address(Address::ZERO),
        DynSolValue::Int(I256::try_from(5i64).unwrap(), 256),
        DynSolValue::Int(I256::try_from(amount1).unwrap(), 256),
        DynSolValue::Uint(U256::from(1u8), 160),
        DynSolValue::Uint(U256::from(10u8), 128),
        DynSolValue::Int(I256::ZERO, 24),
    ]
}

#[test]
fn negative_ints_compare_as_signed() {
    let c =
        Condition::compile(&json!({"arg":"amount1","op":"<","value":"-1000"}), &swap()).unwrap();
    assert!(c.eval(&args(-2500, Address::ZERO)));
    assert!(!c.eval(&args(-999, Address::ZERO)));
    assert!(!c.eval(&args(5, Address::ZERO)));
}

#[test]
fn addresses_are_case_insensitive_and_in_works() {
    let a: Address = "0x1111111111111111111111111111111111111111"
        .parse()
        .unwrap();
    let c = Condition::compile(
        &json!({"all":[{"arg":"sender","op":"in","value":["0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","0x1111111111111111111111111111111111111111"]},
                       {"not":{"arg":"liquidity","op":"==","value":0}}]}),
        &swap(),
    )
    .unwrap();
    assert!(c.eval(&args(1, a)));
    assert!(!c.eval(&args(1, Address::ZERO)));
}

#[test]
fn type_errors_name_the_path() {
    let errs = Condition::compile(
        &json!({"any":[{"arg":"nope","op":"==","value":1},{"arg":"sender","op":">","value":"0x00"},{"arg":"liquidity","op":">","value":"-1"}]}),
        &swap(),
    )
    .unwrap_err();
    let codes: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        codes,
        vec![
            ("condition.any[0].arg", "unknown_argument"),
            ("condition.any[1].op", "operator_not_supported"),
            ("condition.any[2].value", "invalid_literal"),
        ]
    );
}
