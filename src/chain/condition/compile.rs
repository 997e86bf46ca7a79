//! Parsing and type-checking a JSON condition against an event's arguments; every error names
//! its JSON path.

use std::str::FromStr;

use alloy::primitives::{Address, I256, U256};
use serde_json::Value;

use super::{Condition, Literal, Op};
use crate::chain::event::{ArgKind, EventDef};
use crate::chain::trigger::FieldError;

/// Nesting limit: deeper expressions are almost certainly generated garbage.
const MAX_DEPTH: usize = 16;

pub(super) fn compile_node(
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
