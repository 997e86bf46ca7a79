//! Announcement templates: minijinja, sandboxed and bounded.
//!
//! The environment has no loader (templates cannot include files), a fuel limit (loops cannot
//! run away), strict undefined handling (a typo like `args.amout0` fails validation instead of
//! rendering empty), and a byte cap on output enforced by the writer, so a template like
//! `{% for i in range(100000) %}...` can neither hang a watcher nor produce a huge message.
//!
//! Context: `args.<name>` (integers as exact decimal strings, addresses EIP-55), `event.name`,
//! `tx.hash`, `block.number`, `block.hash`, `chain.id`, `chain.name`, `log.address`, `log.index`.
//! Filters: `units(decimals)`, `short`, `explorer_tx`, `explorer_address`.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{hex, Address, B256};
use minijinja::value::Value;
use minijinja::{Environment, Error as JinjaError, ErrorKind, State, UndefinedBehavior};
use std::collections::HashSet;
use std::io;

/// Longest announcement text a template may produce, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Longest template source accepted.
pub const MAX_SOURCE_BYTES: usize = 8192;
/// Instruction budget per render; generous for real messages, fatal for runaway loops.
const FUEL: u64 = 50_000;
const NAME: &str = "announcement";

/// A compiled template.
pub struct Template {
    env: Environment<'static>,
    used: Used,
}

/// Which parts of the context a template reads, worked out once at compile time so rendering
/// skips building values nobody looks at (hex-encoding hashes would otherwise dominate).
struct Used {
    /// Argument names read as `args.<name>`; `None` when `args` is used as a whole.
    args: Option<HashSet<String>>,
    event: bool,
    tx: bool,
    block: bool,
    log: bool,
}

impl Used {
    fn of(vars: &HashSet<String>) -> Self {
        let section = |name: &str| {
            vars.iter().any(|v| {
                v == name
                    || v.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
        };
        let args = (!vars.contains("args")).then(|| {
            vars.iter()
                .filter_map(|v| v.strip_prefix("args."))
                .map(|rest| rest.split('.').next().unwrap_or(rest).to_owned())
                .collect()
        });
        Self {
            args,
            event: section("event"),
            tx: section("tx"),
            block: section("block"),
            log: section("log"),
        }
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").finish_non_exhaustive()
    }
}

/// Why a template failed to compile or render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Source longer than [`MAX_SOURCE_BYTES`].
    #[error("template is longer than {MAX_SOURCE_BYTES} bytes")]
    TooLong,
    /// Syntax error at compile time.
    #[error("template syntax: {0}")]
    Syntax(#[source] JinjaError),
    /// Runtime error (unknown variable, bad filter argument, fuel exhausted).
    #[error("template rendering: {0}")]
    Render(#[source] JinjaError),
    /// Output exceeded [`MAX_OUTPUT_BYTES`].
    #[error("rendered text is longer than {MAX_OUTPUT_BYTES} bytes")]
    OutputTooLong,
    /// The result is empty or whitespace: an announcement must say something.
    #[error("template renders to an empty text")]
    Empty,
}

/// Everything a template can see about one log.
pub struct RenderInput<'a> {
    pub event_name: &'a str,
    pub arg_names: &'a [&'a str],
    pub args: &'a [DynSolValue],
    pub tx_hash: B256,
    pub block_number: u64,
    pub block_hash: B256,
    pub log_address: Address,
    pub log_index: u64,
    pub chain_id: u64,
    pub chain_name: &'a str,
    pub explorer_url: Option<&'a str>,
}

impl Template {
    /// Compiles `source` in a fresh sandboxed environment.
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError::TooLong);
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(32);
        env.add_filter("units", units);
        env.add_filter("short", short);
        env.add_filter("explorer_tx", explorer_tx);
        env.add_filter("explorer_address", explorer_address);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(TemplateError::Syntax)?;
        let vars = env
            .get_template(NAME)
            .map_err(TemplateError::Syntax)?
            .undeclared_variables(true);
        let used = Used::of(&vars);
        Ok(Self { env, used })
    }

    /// Renders the announcement text for one log.
    pub fn render(&self, input: &RenderInput<'_>) -> Result<String, TemplateError> {
        let tmpl = self.env.get_template(NAME).map_err(TemplateError::Syntax)?;
        let mut out = BoundedWriter {
            buf: Vec::with_capacity(256),
            overflow: false,
        };
        let result = tmpl.render_captured_to(self.context(input), &mut out);
        if out.overflow {
            return Err(TemplateError::OutputTooLong);
        }
        result.map_err(TemplateError::Render)?;
        let text = String::from_utf8(out.buf).map_err(|_| TemplateError::Empty)?;
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        Ok(text)
    }
}

impl Template {
    fn context(&self, input: &RenderInput<'_>) -> Value {
        let used = &self.used;
        let args: Value = input
            .arg_names
            .iter()
            .zip(input.args)
            .filter(|(name, _)| used.args.as_ref().is_none_or(|set| set.contains(**name)))
            .map(|(name, value)| (*name, to_value(value)))
            .collect();
        // `chain` is always present: the explorer filters read it even when the template
        // itself does not mention it.
        let explorer = input
            .explorer_url
            .map(Value::from)
            .unwrap_or(Value::from(()));
        let chain: Value = [
            ("id", Value::from(input.chain_id)),
            ("name", Value::from(input.chain_name)),
            ("explorer_url", explorer),
        ]
        .into_iter()
        .collect();
        let mut sections: Vec<(&str, Value)> = vec![("args", args), ("chain", chain)];
        if used.event {
            sections.push(("event", map([("name", Value::from(input.event_name))])));
        }
        if used.tx {
            sections.push((
                "tx",
                map([("hash", Value::from(input.tx_hash.to_string()))]),
            ));
        }
        if used.block {
            let number = Value::from(input.block_number);
            let hash = Value::from(input.block_hash.to_string());
            sections.push(("block", map([("number", number), ("hash", hash)])));
        }
        if used.log {
            let address = Value::from(input.log_address.to_checksum(None));
            let index = Value::from(input.log_index);
            sections.push(("log", map([("address", address), ("index", index)])));
        }
        sections.into_iter().collect()
    }
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    entries.into_iter().collect()
}

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
fn units(value: Value, decimals: u32) -> Result<String, JinjaError> {
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
fn short(value: Value) -> String {
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
fn explorer_tx(state: &State, value: Value) -> String {
    explorer_link(state, "tx", value)
}

/// `{{ args.sender | explorer_address }}`: link to the address on the chain's explorer.
fn explorer_address(state: &State, value: Value) -> String {
    explorer_link(state, "address", value)
}

/// Collects output and refuses to grow past [`MAX_OUTPUT_BYTES`], aborting the render early.
struct BoundedWriter {
    buf: Vec<u8>,
    overflow: bool,
}

impl io::Write for BoundedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.overflow = true;
            return Err(io::Error::other("announcement text too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{I256, U256};

    fn input<'a>(
        names: &'a [&'a str],
        args: &'a [DynSolValue],
        explorer: Option<&'a str>,
    ) -> RenderInput<'a> {
        RenderInput {
            event_name: "Swap",
            arg_names: names,
            args,
            tx_hash: B256::repeat_byte(0x12),
            block_number: 42,
            block_hash: B256::ZERO,
            log_address: Address::repeat_byte(0xaa),
            log_index: 3,
            chain_id: 1,
            chain_name: "mainnet",
            explorer_url: explorer,
        }
    }

    #[test]
    fn units_is_exact() {
        assert_eq!(
            units(Value::from("1500000000000000000"), 18).unwrap(),
            "1.5"
        );
        assert_eq!(units(Value::from("-2500000000"), 6).unwrap(), "-2500");
        assert_eq!(units(Value::from("5"), 3).unwrap(), "0.005");
        assert_eq!(units(Value::from("0"), 18).unwrap(), "0");
        assert_eq!(units(Value::from(123), 0).unwrap(), "123");
        assert!(units(Value::from("1e5"), 2).is_err());
    }

    #[test]
    fn renders_context_and_filters() {
        let t = Template::compile(
            "{{ event.name }} {{ args.amount | units(6) }} by {{ args.who | short }} on {{ chain.name }} #{{ block.number }} {{ tx.hash | explorer_tx }}",
        )
        .unwrap();
        let names = ["amount", "who"];
        let args = [
            DynSolValue::Int(I256::try_from(-1_500_000i64).unwrap(), 256),
            DynSolValue::Address(Address::repeat_byte(0xab)),
        ];
        let text = t
            .render(&input(&names, &args, Some("https://etherscan.io/")))
            .unwrap();
        assert_eq!(
            text,
            format!(
                "Swap -1.5 by 0xABaB…ABaB on mainnet #42 https://etherscan.io/tx/{}",
                B256::repeat_byte(0x12)
            )
        );
    }

    #[test]
    fn unknown_variables_and_runaway_output_fail() {
        let names = ["amount"];
        let args = [DynSolValue::Uint(U256::from(1u8), 256)];
        let typo = Template::compile("{{ args.amout }}").unwrap();
        assert!(matches!(
            typo.render(&input(&names, &args, None)),
            Err(TemplateError::Render(_))
        ));
        let big = Template::compile("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}").unwrap();
        assert!(big.render(&input(&names, &args, None)).is_err());
        assert!(Template::compile("{{ unclosed").is_err());
    }

    #[test]
    fn only_used_parts_are_built_but_whole_objects_still_work() {
        let names = ["a", "b"];
        let args = [DynSolValue::Bool(true), DynSolValue::String("x".into())];
        let t = Template::compile("{% for k, v in args | items %}{{ k }}={{ v }};{% endfor %}{{ args.a }}")
            .unwrap();
        assert_eq!(t.used.args, None);
        assert_eq!(
            t.render(&input(&names, &args, None)).unwrap(),
            "a=True;b=x;True"
        );
        let t = Template::compile("{{ args.b }} {{ log.index }}").unwrap();
        assert!(!t.used.tx && t.used.log);
        assert_eq!(t.render(&input(&names, &args, None)).unwrap(), "x 3");
        let t =
            Template::compile("{% if tx is defined %}{{ tx.hash | short }}{% endif %}").unwrap();
        assert_eq!(
            t.render(&input(&names, &args, None)).unwrap(),
            "0x1212…1212"
        );
    }
}
