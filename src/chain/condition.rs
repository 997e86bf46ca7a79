//! Trigger conditions: a small JSON expression language over decoded event arguments.
//!
//! Grammar (no code execution, only data):
//! `{"all": [c, ...]}`, `{"any": [c, ...]}`, `{"not": c}`, and comparisons
//! `{"arg": "amount0", "op": ">", "value": "1000000000000000000"}` with `op` one of
//! `== != > >= < <= in`. Literals are type-checked against the argument when the trigger is
//! created, so evaluation on the hot path never fails: integers are 256-bit (strings allow any
//! size and sign), addresses compare case-insensitively, bytes are hex.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, I256, U256};
use serde_json::Value;
use std::cmp::Ordering;
use std::str::FromStr;

use super::event::{ArgKind, EventDef};
use super::trigger::FieldError;

/// Nesting limit: deeper expressions are almost certainly generated garbage.
const MAX_DEPTH: usize = 16;
/// Node limit: keeps evaluation cost per log bounded.
const MAX_NODES: usize = 256;

/// A compiled, type-checked condition.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Compare { arg: usize, op: Op, value: Literal },
    In { arg: usize, values: Vec<Literal> },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A literal already converted to the argument's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Uint(U256),
    Int(I256),
    Address(Address),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
}

impl Condition {
    /// Parses and type-checks `json` against the event's arguments; errors name the JSON path
    /// (`condition.all[1].value`) so the API can point at the exact mistake.
    pub fn compile(json: &Value, event: &EventDef) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut nodes = 0;
        let cond = compile_node(json, event, "condition", 0, &mut nodes, &mut errors);
        if nodes > MAX_NODES {
            errors.push(FieldError::new(
                "condition",
                "condition_too_large",
                format!("more than {MAX_NODES} nodes"),
            ));
        }
        match cond {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }

    /// Evaluates against decoded argument values (same order as the event's arguments).
    pub fn eval(&self, args: &[DynSolValue]) -> bool {
        match self {
            Condition::All(items) => items.iter().all(|c| c.eval(args)),
            Condition::Any(items) => items.iter().any(|c| c.eval(args)),
            Condition::Not(inner) => !inner.eval(args),
            Condition::Compare { arg, op, value } => match compare(&args[*arg], value) {
                Some(ord) => match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                },
                // Type-checking at compile time makes this unreachable for well-formed logs;
                // a mismatch means "not this event", so the comparison is simply false.
                None => *op == Op::Ne,
            },
            Condition::In { arg, values } => values
                .iter()
                .any(|v| compare(&args[*arg], v) == Some(Ordering::Equal)),
        }
    }
}

fn compile_node(
    json: &Value,
    event: &EventDef,
    path: &str,
    depth: usize,
    nodes: &mut usize,
    errors: &mut Vec<FieldError>,
) -> Option<Condition> {
    *nodes += 1;
    if depth > MAX_DEPTH {
        errors.push(FieldError::new(
            path,
            "condition_too_deep",
            format!("nesting deeper than {MAX_DEPTH}"),
        ));
        return None;
    }
    let Some(obj) = json.as_object() else {
        errors.push(FieldError::new(
            path,
            "invalid_condition",
            "expected an object",
        ));
        return None;
    };
    if obj.len() == 1 {
        let (key, inner) = obj.iter().next()?;
        match key.as_str() {
            "all" | "any" => {
                let Some(items) = inner.as_array().filter(|a| !a.is_empty()) else {
                    errors.push(FieldError::new(
                        format!("{path}.{key}"),
                        "invalid_condition",
                        "expected a non-empty array",
                    ));
                    return None;
                };
                let compiled: Vec<_> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        compile_node(
                            c,
                            event,
                            &format!("{path}.{key}[{i}]"),
                            depth + 1,
                            nodes,
                            errors,
                        )
                    })
                    .collect();
                return Some(if key == "all" {
                    Condition::All(compiled)
                } else {
                    Condition::Any(compiled)
                });
            }
            "not" => {
                let inner = compile_node(
                    inner,
                    event,
                    &format!("{path}.not"),
                    depth + 1,
                    nodes,
                    errors,
                )?;
                return Some(Condition::Not(Box::new(inner)));
            }
            _ => {}
        }
    }
    compile_comparison(obj, event, path, errors)
}

fn compile_comparison(
    obj: &serde_json::Map<String, Value>,
    event: &EventDef,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Condition> {
    if let Some(extra) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "arg" | "op" | "value"))
    {
        errors.push(FieldError::new(
            path,
            "invalid_condition",
            format!("unknown key {extra:?}; expected all/any/not or arg/op/value"),
        ));
        return None;
    }
    let Some(name) = obj.get("arg").and_then(Value::as_str) else {
        errors.push(FieldError::new(
            format!("{path}.arg"),
            "invalid_condition",
            "expected the argument name as a string",
        ));
        return None;
    };
    let Some((index, info)) = event.arg(name) else {
        let known: Vec<_> = event.args().iter().map(|a| a.name.as_str()).collect();
        errors.push(FieldError::new(
            format!("{path}.arg"),
            "unknown_argument",
            format!(
                "event {} has no argument {name:?} (arguments: {})",
                event.name(),
                known.join(", ")
            ),
        ));
        return None;
    };
    let op = obj.get("op").and_then(Value::as_str).unwrap_or("");
    let value = obj.get("value").unwrap_or(&Value::Null);
    let vpath = format!("{path}.value");
    if info.kind == ArgKind::Composite {
        errors.push(FieldError::new(
            format!("{path}.arg"),
            "argument_not_comparable",
            format!("argument {name:?} is an array or tuple and cannot be compared"),
        ));
        return None;
    }
    if op == "in" {
        let Some(items) = value.as_array() else {
            errors.push(FieldError::new(
                vpath,
                "invalid_literal",
                "`in` expects an array of values",
            ));
            return None;
        };
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match literal(item, info.kind) {
                Ok(l) => values.push(l),
                Err(detail) => errors.push(FieldError::new(
                    format!("{vpath}[{i}]"),
                    "invalid_literal",
                    detail,
                )),
            }
        }
        return Some(Condition::In { arg: index, values });
    }
    let op = match op {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        other => {
            errors.push(FieldError::new(
                format!("{path}.op"),
                "unknown_operator",
                format!("unknown operator {other:?}; expected one of == != > >= < <= in"),
            ));
            return None;
        }
    };
    if !matches!(op, Op::Eq | Op::Ne) && !matches!(info.kind, ArgKind::Uint | ArgKind::Int) {
        errors.push(FieldError::new(
            format!("{path}.op"),
            "operator_not_supported",
            format!(
                "{name:?} is {}; ordering operators need an integer argument",
                info.kind.as_str()
            ),
        ));
        return None;
    }
    match literal(value, info.kind) {
        Ok(value) => Some(Condition::Compare {
            arg: index,
            op,
            value,
        }),
        Err(detail) => {
            errors.push(FieldError::new(vpath, "invalid_literal", detail));
            None
        }
    }
}

/// Converts a JSON literal to the argument's type. Integers may be JSON numbers (when they fit
/// in 64 bits) or decimal/0x-hex strings of any size, so 256-bit amounts are expressible.
fn literal(value: &Value, kind: ArgKind) -> Result<Literal, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Bool(b) if kind == ArgKind::Bool => return Ok(Literal::Bool(*b)),
        other => return Err(format!("expected a {} literal, got {other}", kind.as_str())),
    };
    match kind {
        ArgKind::Uint => U256::from_str(&text)
            .map(Literal::Uint)
            .map_err(|_| format!("{text:?} is not an unsigned 256-bit integer")),
        ArgKind::Int => parse_i256(&text)
            .map(Literal::Int)
            .ok_or_else(|| format!("{text:?} is not a signed 256-bit integer")),
        ArgKind::Address => Address::from_str(&text)
            .map(Literal::Address)
            .map_err(|_| format!("{text:?} is not a 20-byte hex address")),
        ArgKind::Bool => match text.as_str() {
            "true" => Ok(Literal::Bool(true)),
            "false" => Ok(Literal::Bool(false)),
            _ => Err(format!("{text:?} is not a boolean")),
        },
        ArgKind::String => Ok(Literal::Str(text_of(value))),
        ArgKind::Bytes => alloy::primitives::hex::decode(&text)
            .map(Literal::Bytes)
            .map_err(|_| format!("{text:?} is not hex bytes")),
        ArgKind::Composite => Err("arrays and tuples cannot be compared".to_owned()),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_i256(text: &str) -> Option<I256> {
    if let Some(hex) = text.strip_prefix("0x") {
        return U256::from_str_radix(hex, 16).ok().map(I256::from_raw);
    }
    I256::from_dec_str(text).ok()
}

/// Compares a decoded value with a literal of the matching kind; `None` on a type mismatch.
fn compare(value: &DynSolValue, lit: &Literal) -> Option<Ordering> {
    match (value, lit) {
        (DynSolValue::Uint(v, _), Literal::Uint(l)) => Some(v.cmp(l)),
        (DynSolValue::Int(v, _), Literal::Int(l)) => Some(v.cmp(l)),
        (DynSolValue::Address(v), Literal::Address(l)) => Some(v.cmp(l)),
        (DynSolValue::Bool(v), Literal::Bool(l)) => Some(v.cmp(l)),
        (DynSolValue::String(v), Literal::Str(l)) => Some(v.as_str().cmp(l.as_str())),
        (DynSolValue::Bytes(v), Literal::Bytes(l)) => Some(v.as_slice().cmp(l.as_slice())),
        (DynSolValue::FixedBytes(w, n), Literal::Bytes(l)) => Some(w[..*n].cmp(l.as_slice())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
        let c = Condition::compile(&json!({"arg":"amount1","op":"<","value":"-1000"}), &swap())
            .unwrap();
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
}
