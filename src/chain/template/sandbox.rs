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

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, StringInput, Value, ValueKind};
use minijinja::{Environment, Error as JinjaError, ErrorKind, State};

use super::TemplateError;

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

/// Parses `source` and refuses what the module docs explain. Syntax errors are left to the
/// real compilation, which reports them with positions.
// `SyntaxConfig` is a unit struct only while minijinja's `custom_syntax` feature is off.
#[allow(clippy::default_constructed_unit_structs)]
pub(super) fn check_source(source: &str) -> Result<(), TemplateError> {
    let Ok(tree) = parse(
        source,
        super::NAME,
        SyntaxConfig::default(),
        WhitespaceConfig::default(),
    ) else {
        return Ok(());
    };
    let mut vet = Vet { concatenations: 0 };
    vet.stmt(&tree)
}

/// Walks the tree, counting concatenations.
struct Vet {
    concatenations: usize,
}

fn forbidden(what: &str) -> TemplateError {
    TemplateError::Forbidden(what.to_owned())
}

impl Vet {
    fn stmt(&mut self, stmt: &Stmt<'_>) -> Result<(), TemplateError> {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::IfCond(c) => {
                self.expr(&c.expr)?;
                self.stmts(&c.true_body)?;
                self.stmts(&c.false_body)
            }
            Stmt::ForLoop(l) => {
                if l.recursive {
                    return Err(forbidden("a recursive loop"));
                }
                if grows(&l.iter) {
                    return Err(forbidden(
                        "a loop over a concatenated value (loop over a variable such as `args.items`, filters allowed)",
                    ));
                }
                self.expr(&l.target)?;
                self.expr(&l.iter)?;
                if let Some(filter) = &l.filter_expr {
                    self.expr(filter)?;
                }
                self.stmts(&l.body)?;
                self.stmts(&l.else_body)
            }
            Stmt::Set(_) | Stmt::SetBlock(_) => Err(forbidden("{% set %}")),
            Stmt::WithBlock(_) => Err(forbidden("{% with %}")),
            Stmt::FilterBlock(_) => Err(forbidden("{% filter %}")),
            Stmt::AutoEscape(_) => Err(forbidden("{% autoescape %}")),
            _ => Err(forbidden(
                "a statement other than if and for (macros, includes, calls)",
            )),
        }
    }

    fn stmts(&mut self, stmts: &[Stmt<'_>]) -> Result<(), TemplateError> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    fn expr(&mut self, expr: &Expr<'_>) -> Result<(), TemplateError> {
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::Slice(s) => {
                self.expr(&s.expr)?;
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part)?;
                }
                Ok(())
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                match b.op {
                    ast::BinOpKind::Mul | ast::BinOpKind::Pow => {
                        return Err(forbidden("the `*` and `**` operators"))
                    }
                    ast::BinOpKind::Concat | ast::BinOpKind::Add => self.concatenation()?,
                    _ => {}
                }
                self.expr(&b.left)?;
                self.expr(&b.right)
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                c.ops.iter().try_for_each(|op| self.expr(&op.expr))
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                self.expr(&i.true_expr)?;
                i.false_expr.as_ref().map_or(Ok(()), |e| self.expr(e))
            }
            Expr::Filter(f) => {
                if let Some(inner) = &f.expr {
                    self.expr(inner)?;
                }
                self.args(&f.args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr)?;
                self.expr(&g.subscript_expr)
            }
            Expr::Call(_) => Err(forbidden("function and method calls")),
            Expr::List(l) => self.items(&l.items),
            Expr::Map(m) => {
                self.items(&m.keys)?;
                self.items(&m.values)
            }
        }
    }

    /// List or map literal items: constants are free, anything else counts as a concatenation.
    fn items(&mut self, items: &[Expr<'_>]) -> Result<(), TemplateError> {
        for item in items {
            if !matches!(item, Expr::Const(_)) {
                self.concatenation()?;
                self.expr(item)?;
            }
        }
        Ok(())
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Result<(), TemplateError> {
        args.iter().try_for_each(|arg| match arg {
            CallArg::Pos(e) | CallArg::Kwarg(_, e) => self.expr(e),
            CallArg::PosSplat(_) | CallArg::KwargSplat(_) => {
                Err(forbidden("`*args` and `**kwargs` in filter arguments"))
            }
        })
    }

    fn concatenation(&mut self) -> Result<(), TemplateError> {
        self.concatenations += 1;
        if self.concatenations > MAX_CONCATENATIONS {
            return Err(TemplateError::Forbidden(format!(
                "more than {MAX_CONCATENATIONS} concatenations (`~`, `+`, variables in list literals)"
            )));
        }
        Ok(())
    }
}

/// Whether `expr` contains a concatenation: `~`, `+`, `*`, `**`, or a list or map literal
/// with a non-constant item.
fn grows(expr: &Expr<'_>) -> bool {
    let any = |exprs: &[&Expr<'_>]| exprs.iter().any(|e| grows(e));
    let arg = |a: &CallArg<'_>| match a {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
            grows(e)
        }
    };
    match expr {
        Expr::Var(_) | Expr::Const(_) => false,
        Expr::Slice(s) => {
            grows(&s.expr)
                || [&s.start, &s.stop, &s.step]
                    .into_iter()
                    .flatten()
                    .any(grows)
        }
        Expr::UnaryOp(u) => grows(&u.expr),
        Expr::BinOp(b) => {
            matches!(
                b.op,
                ast::BinOpKind::Concat
                    | ast::BinOpKind::Add
                    | ast::BinOpKind::Mul
                    | ast::BinOpKind::Pow
            ) || any(&[&b.left, &b.right])
        }
        Expr::Compare(c) => grows(&c.expr) || c.ops.iter().any(|op| grows(&op.expr)),
        Expr::IfExpr(i) => {
            grows(&i.test_expr) || grows(&i.true_expr) || i.false_expr.as_ref().is_some_and(grows)
        }
        Expr::Filter(f) => f.expr.as_ref().is_some_and(grows) || f.args.iter().any(arg),
        Expr::Test(t) => grows(&t.expr) || t.args.iter().any(arg),
        Expr::GetAttr(g) => grows(&g.expr),
        Expr::GetItem(g) => grows(&g.expr) || grows(&g.subscript_expr),
        Expr::Call(_) => true,
        Expr::List(l) => l.items.iter().any(|e| !matches!(e, Expr::Const(_))),
        Expr::Map(m) => m
            .keys
            .iter()
            .chain(&m.values)
            .any(|e| !matches!(e, Expr::Const(_))),
    }
}
