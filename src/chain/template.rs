//! Announcement templates: minijinja, sandboxed and bounded.
//!
//! Templates come from API users, so rendering must be bounded in time, output and memory:
//! - no loader (nothing can be included), no globals (`range`, `namespace`), and only filters
//!   whose output is about as large as their input (no `replace`, `indent`, `format`...);
//! - statements limited to `if`/`for` and no `*` operator: without `set`, macros or string
//!   repetition, no intermediate value can grow beyond the template's size times its inputs,
//!   so a template like `{% set s = s ~ s %}` (repeated) cannot exhaust memory;
//! - a fuel limit (loops cannot run away) and a byte cap on output enforced by the writer;
//! - strict undefined handling: a typo like `args.amout0` fails validation instead of
//!   rendering empty.
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
    /// A construct outside the sandbox (`{% set %}`, macros, `*`, ...).
    #[error("template uses {0}, which is not allowed (allowed statements: if, for; no `*`)")]
    Forbidden(String),
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
        check_source(source)?;
        let mut env = sandbox();
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

/// An environment with only bounded-size filters and tests, and no globals.
fn sandbox() -> Environment<'static> {
    use minijinja::{filters as f, tests as t};
    let mut env = Environment::empty();
    env.add_filter("upper", f::upper);
    env.add_filter("lower", f::lower);
    env.add_filter("title", f::title);
    env.add_filter("capitalize", f::capitalize);
    env.add_filter("trim", f::trim);
    env.add_filter("length", f::length);
    env.add_filter("default", f::default);
    env.add_filter("abs", f::abs);
    env.add_filter("round", f::round);
    env.add_filter("int", f::int);
    env.add_filter("float", f::float);
    env.add_filter("first", f::first);
    env.add_filter("last", f::last);
    env.add_filter("join", f::join);
    env.add_filter("list", f::list);
    env.add_filter("reverse", f::reverse);
    env.add_filter("sort", f::sort);
    env.add_filter("unique", f::unique);
    env.add_filter("min", f::min);
    env.add_filter("max", f::max);
    env.add_filter("sum", f::sum);
    env.add_filter("items", f::items);
    env.add_filter("string", f::string);
    env.add_test("defined", t::is_defined);
    env.add_test("undefined", t::is_undefined);
    env.add_test("none", t::is_none);
    env.add_test("number", t::is_number);
    env.add_test("string", t::is_string);
    env.add_test("sequence", t::is_sequence);
    env.add_test("mapping", t::is_mapping);
    env.add_test("true", t::is_true);
    env.add_test("false", t::is_false);
    env.add_test("odd", t::is_odd);
    env.add_test("even", t::is_even);
    env.add_test("in", t::is_in);
    env
}

/// Statements a template may use; everything else could bind or repeat values.
const ALLOWED_STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor"];

/// Rejects statements outside [`ALLOWED_STATEMENTS`] and the `*` operator inside `{{ }}` and
/// `{% %}` blocks (string literals and plain text are not checked).
fn check_source(source: &str) -> Result<(), TemplateError> {
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let (close, is_statement) = match after.as_bytes().first() {
            Some(b'{') => ("}}", false),
            Some(b'%') => ("%}", true),
            Some(b'#') => {
                // Comments render nothing; skip to their end.
                rest = after.find("#}").map_or("", |end| &after[end + 2..]);
                continue;
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let code = &after[1..];
        let end = code_end(code, close).unwrap_or(code.len());
        let block = &code[..end];
        if is_statement {
            let keyword: String = block
                .trim_start_matches(['-', '+', '~'])
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ALLOWED_STATEMENTS.contains(&keyword.as_str()) {
                return Err(TemplateError::Forbidden(format!("{{% {keyword} %}}")));
            }
        }
        if outside_strings(block).any(|c| c == '*') {
            return Err(TemplateError::Forbidden("the `*` operator".to_owned()));
        }
        rest = code.get(end + close.len()..).unwrap_or("");
    }
    Ok(())
}

/// Index of `close` in `code`, ignoring occurrences inside string literals.
fn code_end(code: &str, close: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in code.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if code[i..].starts_with(close) => return Some(i),
            None => {}
        }
    }
    None
}

/// The characters of `code` that are not inside string literals.
fn outside_strings(code: &str) -> impl Iterator<Item = char> + '_ {
    let mut quote = None;
    let mut escaped = false;
    code.chars().filter(move |&c| match quote {
        Some(q) => {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            false
        }
        None if c == '\'' || c == '"' => {
            quote = Some(c);
            false
        }
        None => true,
    })
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
        // `range` is not available; a loop over an argument still hits the output cap.
        assert!(
            Template::compile("{% for i in range(10000) %}x{% endfor %}")
                .unwrap()
                .render(&input(&names, &args, None))
                .is_err()
        );
        assert!(Template::compile("{{ unclosed").is_err());
    }

    #[test]
    fn only_used_parts_are_built_but_whole_objects_still_work() {
        let names = ["a", "b"];
        let args = [DynSolValue::Bool(true), DynSolValue::String("x".into())];
        let t = Template::compile(
            "{% for k, v in args | items %}{{ k }}={{ v }};{% endfor %}{{ args.a }}",
        )
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

    #[test]
    fn constructs_that_could_exhaust_memory_are_rejected() {
        for source in [
            "{% set s = 'x' %}{{ s }}",
            "{%- set s = 'x' -%}",
            "{% macro m() %}x{% endmacro %}",
            "{% with a = 1 %}{% endwith %}",
            "{% filter upper %}x{% endfilter %}",
            "{% include 'x' %}",
            "{{ 'x' * 1000 }}",
            "{% if args.a * 2 %}{% endif %}",
        ] {
            assert!(
                matches!(Template::compile(source), Err(TemplateError::Forbidden(_))),
                "{source}"
            );
        }
        // Stars and statement-like text in literals, comments and plain text are fine.
        let t = Template::compile(
            "*bold* {# {% set %} #}{{ '* {% set %}' }}{% if true %}ok{% endif %}",
        )
        .unwrap();
        let names = ["a"];
        let args = [DynSolValue::Bool(true)];
        assert_eq!(
            t.render(&input(&names, &args, None)).unwrap(),
            "*bold* * {% set %}ok"
        );
        // Growing filters and globals simply do not exist.
        for source in [
            "{{ 'a' | replace('a', 'bb') }}",
            "{{ namespace() }}",
            "{{ 'a' | indent(9) }}",
        ] {
            let result =
                Template::compile(source).and_then(|t| t.render(&input(&names, &args, None)));
            assert!(result.is_err(), "{source}");
        }
    }
}
