//! Announcement templates: minijinja, sandboxed and bounded.
//!
//! Templates come from API users, so rendering must be bounded in time, output and memory:
//! - no loader (nothing can be included), no globals (`range`, `namespace`), and only filters
//!   whose output is about as large as their input (no `replace`, `indent`, `format`...); the
//!   few that can grow (`join`, `list`, `string`) refuse results over 16 KiB;
//! - the parsed template is vetted (`sandbox.rs`): statements limited to `if`/`for`, no calls,
//!   no `*`/`**`, at most 16 concatenations, and a loop may not iterate over a concatenated
//!   value, so no value can be fed back to double again (`{% for s in [s ~ s] %}` nested 28
//!   deep would be 2 GiB);
//! - the inputs are bounded too: strings cut at 4 KiB, arrays at 256 items, 16 KiB per log;
//! - a fuel limit (loops cannot run away), a 250 ms time limit checked by every filter call,
//!   and a byte cap on output enforced by the writer; callers render off the async runtime;
//! - strict undefined handling: a typo like `args.amout0` fails validation instead of
//!   rendering empty.
//!
//! Context: `args.<name>` (integers as exact decimal strings, addresses EIP-55), `event.name`,
//! `tx.hash`, `block.number`, `block.hash`, `chain.id`, `chain.name`, `log.address`, `log.index`.
//! Filters: `units(decimals)`, `short`, `explorer_tx`, `explorer_address`.
//! Watch alerts (`chain::watch`) see `outputs.<name>`, `subscriber`, `contract`, `block.number`
//! and `chain` instead ([`Template::render_watch`]).

//!
//! This file compiles and renders; `sandbox.rs` builds the restricted environment and vets the
//! source, `filters.rs` holds herald's own filters and the ABI-to-template value conversion.

mod filters;
mod sandbox;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io;

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, B256};
use minijinja::value::Value;
use minijinja::{Environment, Error as JinjaError, UndefinedBehavior};

pub use filters::to_value;
use filters::{explorer_address, explorer_tx, short, units, Converter};
use sandbox::{check_deadline, check_source, sandbox, with_deadline};

/// Longest announcement text a template may produce, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Longest template source accepted.
pub const MAX_SOURCE_BYTES: usize = 8192;
/// Instruction budget per render; generous for real messages (a loop over 256 items uses a few
/// thousand), fatal for runaway loops.
const FUEL: u64 = 20_000;
/// CPU-time limit for one render, checked by every filter call (filters are where a render
/// spends time in proportion to its values). Real templates take microseconds.
pub const RENDER_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(250);
/// Wall-clock budget for validating a trigger off the async runtime (validation answers 422
/// past it). Fuel, the value limits and [`RENDER_TIME_LIMIT`] bound the work far below this;
/// the budget is the backstop that keeps a request from waiting on a busy blocking pool.
pub const RENDER_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
const NAME: &str = "announcement";

/// A compiled template.
pub struct Template {
    env: Environment<'static>,
    used: Used,
    time_limit: std::time::Duration,
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
    /// The render passed [`RENDER_TIME_LIMIT`] (checked by every filter).
    #[error("rendering took longer than {} ms", RENDER_TIME_LIMIT.as_millis())]
    TooSlow,
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

/// Everything a watch template can see about one subscriber's crossing.
pub struct WatchRenderInput<'a> {
    pub output_names: &'a [&'a str],
    pub outputs: &'a [DynSolValue],
    pub subscriber: Address,
    pub contract: Address,
    pub block_number: u64,
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
        env.add_filter("units", |value: Value, decimals: u32| {
            check_deadline()?;
            units(value, decimals)
        });
        env.add_filter("short", |value: Value| {
            check_deadline().map(|()| short(value))
        });
        env.add_filter("explorer_tx", |state: &minijinja::State, value: Value| {
            check_deadline().map(|()| explorer_tx(state, value))
        });
        env.add_filter(
            "explorer_address",
            |state: &minijinja::State, value: Value| {
                check_deadline().map(|()| explorer_address(state, value))
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(TemplateError::Syntax)?;
        let vars = env
            .get_template(NAME)
            .map_err(TemplateError::Syntax)?
            .undeclared_variables(true);
        let used = Used::of(&vars);
        Ok(Self {
            env,
            used,
            time_limit: RENDER_TIME_LIMIT,
        })
    }

    /// Renders the announcement text for one log.
    pub fn render(&self, input: &RenderInput<'_>) -> Result<String, TemplateError> {
        self.render_context(self.context(input))
    }

    /// Renders a watch alert for one subscriber: `outputs.<name>` (the view function's
    /// decoded outputs), `subscriber` (EIP-55), `contract`, `block.number` and `chain`.
    pub fn render_watch(&self, input: &WatchRenderInput<'_>) -> Result<String, TemplateError> {
        let mut converter = Converter::default();
        let outputs: Value = input
            .output_names
            .iter()
            .zip(input.outputs)
            .map(|(name, value)| (*name, converter.value(value)))
            .collect();
        let context: Value = [
            ("outputs", outputs),
            (
                "subscriber",
                Value::from(input.subscriber.to_checksum(None)),
            ),
            ("contract", Value::from(input.contract.to_checksum(None))),
            ("block", map([("number", Value::from(input.block_number))])),
            (
                "chain",
                chain_value(input.chain_id, input.chain_name, input.explorer_url),
            ),
        ]
        .into_iter()
        .collect();
        self.render_context(context)
    }

    fn render_context(&self, context: Value) -> Result<String, TemplateError> {
        let tmpl = self.env.get_template(NAME).map_err(TemplateError::Syntax)?;
        let mut out = BoundedWriter {
            buf: Vec::with_capacity(256),
            overflow: false,
        };
        let (result, late) = with_deadline(self.time_limit, || {
            tmpl.render_captured_to(context, &mut out)
        });
        if out.overflow {
            return Err(TemplateError::OutputTooLong);
        }
        if late && result.is_err() {
            return Err(TemplateError::TooSlow);
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
        let mut converter = Converter::default();
        let args: Value = input
            .arg_names
            .iter()
            .zip(input.args)
            .filter(|(name, _)| used.args.as_ref().is_none_or(|set| set.contains(**name)))
            .map(|(name, value)| (*name, converter.value(value)))
            .collect();
        // `chain` is always present: the explorer filters read it even when the template
        // itself does not mention it.
        let chain = chain_value(input.chain_id, input.chain_name, input.explorer_url);
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

fn chain_value(id: u64, name: &str, explorer_url: Option<&str>) -> Value {
    let explorer = explorer_url.map(Value::from).unwrap_or(Value::from(()));
    map([
        ("id", Value::from(id)),
        ("name", Value::from(name)),
        ("explorer_url", explorer),
    ])
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    entries.into_iter().collect()
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
