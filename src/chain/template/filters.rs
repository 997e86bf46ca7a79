//! herald's own template filters (`units`, `short`, `explorer_tx`, `explorer_address`) and the
//! conversion of decoded ABI values into template values.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::hex;
use minijinja::value::Value;
use minijinja::{Error as JinjaError, ErrorKind, State};

/// Longest string a template sees for one value, in bytes: longer strings (and hex of longer
/// byte arrays) are cut, since no announcement can be longer anyway.
pub const MAX_ARG_BYTES: usize = super::MAX_OUTPUT_BYTES;
/// Most items of one array a template sees; later items are dropped.
pub const MAX_ARG_ITEMS: usize = 256;
/// Bytes of strings all of one log's values may add up to; past it, strings are cut to `…`.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// Converts one log's decoded ABI values to template values within the limits above, which keep
/// the template's inputs (and so, with the sandbox's rules, all its values) small whatever a
/// contract emits.
pub struct Converter {
    budget: usize,
}

impl Default for Converter {
    fn default() -> Self {
        Self {
            budget: MAX_CONTEXT_BYTES,
        }
    }
}

impl Converter {
    /// Converts a decoded ABI value to a template value. Integers become decimal strings
    /// because 256-bit amounts do not fit template numbers; `units` turns them into token
    /// amounts. Control characters in strings (a NUL cannot be stored) become U+FFFD.
    pub fn value(&mut self, value: &DynSolValue) -> Value {
        match value {
            DynSolValue::Bool(b) => Value::from(*b),
            DynSolValue::Int(i, _) => self.text(i.to_string()),
            DynSolValue::Uint(u, _) => self.text(u.to_string()),
            DynSolValue::Address(a) => self.text(a.to_checksum(None)),
            DynSolValue::FixedBytes(w, n) => self.text(hex::encode_prefixed(&w[..*n])),
            DynSolValue::Function(f) => self.text(hex::encode_prefixed(f.as_slice())),
            DynSolValue::Bytes(b) => {
                // Only the part that can be shown is encoded.
                let shown = &b[..b.len().min(MAX_ARG_BYTES / 2)];
                self.text(hex::encode_prefixed(shown))
            }
            DynSolValue::String(s) => self.text(
                s.chars()
                    .map(|c| {
                        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                            '\u{FFFD}'
                        } else {
                            c
                        }
                    })
                    .collect(),
            ),
            DynSolValue::Array(items)
            | DynSolValue::FixedArray(items)
            | DynSolValue::Tuple(items) => Value::from(
                items
                    .iter()
                    .take(MAX_ARG_ITEMS)
                    .map(|v| self.value(v))
                    .collect::<Vec<_>>(),
            ),
            #[allow(unreachable_patterns)]
            _ => Value::from(()),
        }
    }

    /// `text` cut to [`MAX_ARG_BYTES`] and to what is left of the budget.
    fn text(&mut self, mut text: String) -> Value {
        let room = MAX_ARG_BYTES.min(self.budget);
        if text.len() > room {
            let mut cut = room.saturating_sub('…'.len_utf8());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        self.budget = self.budget.saturating_sub(text.len());
        Value::from(text)
    }
}

/// Converts one value on its own (tests, sample rendering): [`Converter::value`] with a fresh
/// budget.
pub fn to_value(value: &DynSolValue) -> Value {
    Converter::default().value(value)
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
