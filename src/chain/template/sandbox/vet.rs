//! The check of a parsed template against the rules in the parent module's docs: no repetition,
//! no calls or recursive loops, at most [`MAX_CONCATENATIONS`] concatenations, and loops only over
//! values that contain none.

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

use super::MAX_CONCATENATIONS;
use crate::chain::template::{TemplateError, NAME};

/// Parses `source` and refuses what the module docs explain. Syntax errors are left to the
/// real compilation, which reports them with positions.
// `SyntaxConfig` is a unit struct only while minijinja's `custom_syntax` feature is off.
#[allow(clippy::default_constructed_unit_structs)]
pub(in crate::chain::template) fn check_source(source: &str) -> Result<(), TemplateError> {
    let Ok(tree) = parse(
        source,
        NAME,
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
