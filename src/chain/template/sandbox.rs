//! The template sandbox: an environment with only bounded-size filters and tests, and a source
//! check that refuses statements and operators which could bind or repeat values.

use minijinja::Environment;

use super::TemplateError;

/// An environment with only bounded-size filters and tests, and no globals.
pub(super) fn sandbox() -> Environment<'static> {
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
pub(super) fn check_source(source: &str) -> Result<(), TemplateError> {
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
    classify(code)
        .find(|&(i, _, literal)| !literal && code[i..].starts_with(close))
        .map(|(i, _, _)| i)
}

/// The characters of `code` that are not inside string literals.
fn outside_strings(code: &str) -> impl Iterator<Item = char> + '_ {
    classify(code)
        .filter(|&(_, _, literal)| !literal)
        .map(|(_, c, _)| c)
}

/// Each character of `code` with its byte index and whether it belongs to a string literal
/// (its quotes included), honouring backslash escapes inside literals.
fn classify(code: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let mut quote = None;
    let mut escaped = false;
    code.char_indices().map(move |(i, c)| {
        let literal = match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                true
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                true
            }
            None => false,
        };
        (i, c, literal)
    })
}
