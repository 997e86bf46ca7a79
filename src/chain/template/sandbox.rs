//! The template sandbox: an environment with only bounded-size filters and tests, and a check
//! of the parsed template that refuses every construct through which a value could grow
//! without bound.
//!
//! Why these rules bound memory: a value can only get larger than the inputs through string or
//! list concatenation (`~`, `+`, list literals of variables), repetition (`*`, `**`), or a
//! filter whose output outgrows its input. Repetition is refused; concatenations are limited to
//! [`MAX_CONCATENATIONS`] per template; the growing filters (`join`, `list`, `string`) refuse
//! outputs over [`MAX_VALUE_BYTES`]. What remains dangerous is *feeding a grown value back in*:
//! `{% for s in [s ~ s] %}` nested 28 deep doubles a string 28 times (2 GiB) with one
//! concatenation. Values can only be fed back through names, and the only binding statement
//! left is `for`; so a loop must iterate over something that contains no concatenation, and
//! recursive loops (`loop(...)`) and all calls are refused. Every value is then at most about
//! `MAX_CONCATENATIONS + 1` times the largest input, constant or filter output.

use std::borrow::Cow;
use std::cell::Cell;
use std::time::Duration;

use minijinja::value::{Kwargs, Rest, StringInput, Value, ValueKind};
use minijinja::{Environment, Error as JinjaError, ErrorKind, State};

mod vet;

pub(super) use vet::check_source;

/// Most `~`, `+` and non-constant list or map items one template may contain.
pub const MAX_CONCATENATIONS: usize = 16;
/// Largest string (in bytes) or list (in items) the growing filters may produce.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

thread_local! {
    /// The thread CPU time at which the render running on this thread must stop; see
    /// [`with_deadline`].
    static DEADLINE: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// CPU time this thread has used. CPU time rather than wall-clock time: a render on a busy
/// machine that is merely waiting for a core must not be cut short (its announcement would be
/// lost); only work done counts.
#[cfg(unix)]
fn thread_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Elsewhere, wall-clock time since the first call on this thread.
#[cfg(not(unix))]
fn thread_time() -> Duration {
    thread_local! {
        static START: std::time::Instant = std::time::Instant::now();
    }
    START.with(|start| start.elapsed())
}

/// Runs `render` with a deadline `limit` of CPU time from now, checked by every filter:
/// filters are where a render spends time in proportion to its values (sorting, joining,
/// converting), and a loop can call them as often as fuel allows. Returns whether the
/// deadline passed.
pub(super) fn with_deadline<T>(limit: Duration, render: impl FnOnce() -> T) -> (T, bool) {
    DEADLINE.with(|d| d.set(Some(thread_time() + limit)));
    let out = render();
    let passed = DEADLINE
        .with(|d| d.take())
        .is_some_and(|at| thread_time() >= at);
    (out, passed)
}

/// Fails once the current render's deadline has passed.
pub(super) fn check_deadline() -> Result<(), JinjaError> {
    match DEADLINE.with(Cell::get) {
        Some(at) if thread_time() >= at => Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            "rendering took too long",
        )),
        _ => Ok(()),
    }
}

/// An environment with only bounded-size filters and tests, and no globals. Every filter
/// checks the render's deadline first.
pub(super) fn sandbox() -> Environment<'static> {
    use minijinja::{filters as f, tests as t};
    type R = Result<Value, JinjaError>;
    let mut env = Environment::empty();
    env.add_filter("upper", |v: StringInput<'_>| -> R {
        check_deadline()?;
        Ok(f::upper(v))
    });
    env.add_filter("lower", |v: StringInput<'_>| -> R {
        check_deadline()?;
        Ok(f::lower(v))
    });
    env.add_filter("title", |v: Cow<'_, str>| -> R {
        check_deadline()?;
        Ok(Value::from(f::title(v)))
    });
    env.add_filter("capitalize", |v: StringInput<'_>| -> R {
        check_deadline()?;
        Ok(f::capitalize(v))
    });
    env.add_filter(
        "trim",
        |v: StringInput<'_>, chars: Option<Cow<'_, str>>| -> R {
            check_deadline()?;
            Ok(f::trim(v, chars))
        },
    );
    env.add_filter("length", |v: &Value| -> R {
        check_deadline()?;
        f::length(v).map(Value::from)
    });
    env.add_filter("default", |s: &State, v: &Value, args: Rest<Value>| -> R {
        check_deadline()?;
        f::default(s, v, args)
    });
    env.add_filter("abs", |v: Value| -> R {
        check_deadline()?;
        f::abs(v)
    });
    env.add_filter("round", |v: Value, precision: Option<i32>| -> R {
        check_deadline()?;
        f::round(v, precision)
    });
    env.add_filter("int", |s: &State, v: &Value| -> R {
        check_deadline()?;
        f::int(s, v)
    });
    env.add_filter("float", |s: &State, v: &Value| -> R {
        check_deadline()?;
        f::float(s, v)
    });
    env.add_filter("first", |v: &Value| -> R {
        check_deadline()?;
        f::first(v)
    });
    env.add_filter("last", |v: Value| -> R {
        check_deadline()?;
        f::last(v)
    });
    env.add_filter("join", |v: &Value, sep: Option<Cow<'_, str>>| -> R {
        check_deadline()?;
        join(v, sep).map(Value::from)
    });
    env.add_filter("list", |s: &State, v: Value| -> R {
        check_deadline()?;
        capped(f::list(s, v)?)
    });
    env.add_filter("reverse", |v: &Value| -> R {
        check_deadline()?;
        f::reverse(v)
    });
    env.add_filter("sort", |s: &State, v: Value, kwargs: Kwargs| -> R {
        check_deadline()?;
        f::sort(s, v, kwargs)
    });
    env.add_filter("unique", |s: &State, v: Value, kwargs: Kwargs| -> R {
        check_deadline()?;
        f::unique(s, v, kwargs)
    });
    env.add_filter("min", |s: &State, v: Value| -> R {
        check_deadline()?;
        f::min(s, v)
    });
    env.add_filter("max", |s: &State, v: Value| -> R {
        check_deadline()?;
        f::max(s, v)
    });
    env.add_filter("sum", |s: &State, v: Value| -> R {
        check_deadline()?;
        f::sum(s, v)
    });
    env.add_filter("items", |v: &Value| -> R {
        check_deadline()?;
        f::items(v)
    });
    env.add_filter("string", |s: &State, v: &Value| -> R {
        check_deadline()?;
        capped(f::string(s, v)?)
    });
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

/// `value` unless it is a string or sequence over [`MAX_VALUE_BYTES`].
fn capped(value: Value) -> Result<Value, JinjaError> {
    let size = match value.kind() {
        ValueKind::String => value.as_str().map_or(0, str::len),
        ValueKind::Seq => value.len().unwrap_or(0),
        _ => 0,
    };
    if size > MAX_VALUE_BYTES {
        return Err(too_large());
    }
    Ok(value)
}

fn too_large() -> JinjaError {
    JinjaError::new(
        ErrorKind::InvalidOperation,
        format!("value larger than {MAX_VALUE_BYTES} bytes"),
    )
}

/// `join` that stops as soon as its output would pass [`MAX_VALUE_BYTES`], instead of first
/// building it (a separator as long as the input, joined over every character, is quadratic).
fn join(value: &Value, sep: Option<Cow<'_, str>>) -> Result<String, JinjaError> {
    let sep = sep.as_deref().unwrap_or("");
    let items = value.try_iter()?;
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match item.as_str() {
            Some(s) => out.push_str(s),
            None => out.push_str(&item.to_string()),
        }
        if out.len() > MAX_VALUE_BYTES {
            return Err(too_large());
        }
    }
    Ok(out)
}
