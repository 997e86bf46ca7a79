//! herald's own template filters (`units`, `short`, `explorer_tx`, `explorer_address`) and the
//! conversion of decoded ABI values into template values.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::hex;
use minijinja::value::Value;
use minijinja::{Error as JinjaError, ErrorKind, State};

/// Converts a decoded ABI value to a template value. Integers become decimal strings because
/// 256-bit amounts do not fit template numbers; `units` turns them into token amounts.
pub fn to_value(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Bool(b) => Value::from(*b),
        DynSolValue::Int(i, _) => Value::from(i.to_string()),
        DynSolValue::Uint(u, _) => Value::from(u.to_string()),
        DynSolValue::Address(a) => Value::from(a.to_checksum(None)),
        DynSolValue::FixedBytes(w, n) => Value::from(hex::encode_prefixed(&w[..*n])),
        DynSolValue::Function(f) => Value::from(hex::encode_prefixed(f.as_slice())),
        DynSolValue::Bytes(b) => Value::from(hex::encode_prefixed(b)),
        DynSolValue::String(s) => Value::from(s.as_str()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::from(items.iter().map(to_value).collect::<Vec<_>>())
        }
        #[allow(unreachable_patterns)]
        _ => Value::from(()),
    }
}

/// `{{ args.amount | units(18) }}`: exact decimal scaling of an integer (string or number),
/// keeping the sign and dropping trailing zeros: `1500000000000000000 | units(18)` is `1.5`.
pub(super) fn units(value: Value, decimals: u32) -> Result<String, JinjaError> {
    let raw = value.to_string();
    let (neg, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || decimals > 255 {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("units: {raw:?} is not an integer"),
        ));
    }
    let d = decimals as usize;
    let padded = if digits.len() <= d {
        format!("{}{digits}", "0".repeat(d + 1 - digits.len()))
    } else {
        digits.to_owned()
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - d);
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let mut out = String::with_capacity(padded.len() + 2);
    if neg && (!int_part.is_empty() || !frac_part.is_empty()) {
        out.push('-');
    }
    out.push_str(if int_part.is_empty() { "0" } else { int_part });
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    Ok(out)
}

/// `{{ args.sender | short }}`: `0x1234…abcd` for long hex strings, unchanged otherwise.
pub(super) fn short(value: Value) -> String {
    let s = value.to_string();
    if s.starts_with("0x") && s.len() > 12 && s.is_ascii() {
        format!("{}…{}", &s[..6], &s[s.len() - 4..])
    } else {
        s
    }
}

fn explorer_link(state: &State, kind: &str, value: Value) -> String {
    let base = state
        .lookup("chain")
        .and_then(|c| c.get_attr("explorer_url").ok())
        .and_then(|u| u.as_str().map(|s| s.trim_end_matches('/').to_owned()));
    match base {
        Some(base) if !base.is_empty() => format!("{base}/{kind}/{value}"),
        // Without an explorer the identifier itself is the most useful thing to show.
        _ => value.to_string(),
    }
}

/// `{{ tx.hash | explorer_tx }}`: link to the transaction on the chain's explorer.
pub(super) fn explorer_tx(state: &State, value: Value) -> String {
    explorer_link(state, "tx", value)
}

/// `{{ args.sender | explorer_address }}`: link to the address on the chain's explorer.
pub(super) fn explorer_address(state: &State, value: Value) -> String {
    explorer_link(state, "address", value)
}
