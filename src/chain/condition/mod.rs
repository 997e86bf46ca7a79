//! Trigger conditions: a small JSON expression language over decoded event arguments.
//!
//! Grammar (no code execution, only data):
//! `{"all": [c, ...]}`, `{"any": [c, ...]}`, `{"not": c}`, and comparisons
//! `{"arg": "amount0", "op": ">", "value": "1000000000000000000"}` with `op` one of
//! `== != > >= < <= in`. Literals are type-checked against the argument when the trigger is
//! created, so evaluation on the hot path never fails: integers are 256-bit (strings allow any
//! size and sign), addresses compare case-insensitively, bytes are hex.

//!
//! This file holds the compiled form and its evaluation; `compile.rs` parses and type-checks
//! the JSON.

mod compile;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, I256, U256};
use serde_json::Value;

use super::event::EventDef;
use super::trigger::FieldError;
use compile::compile_node;
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
        Self::compile_at(json, event, "condition")
    }

    /// Like [`Condition::compile`], for a condition found at another request field (a
    /// watch's `rearm`); error paths start with `field`.
    pub fn compile_at(
        json: &Value,
        event: &EventDef,
        field: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut nodes = 0;
        let cond = compile_node(json, event, field, 0, &mut nodes, &mut errors);
        if nodes > MAX_NODES {
            errors.push(FieldError::new(
                field,
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
