//! Docs that must follow the code: every error code an `ApiError` is built with appears in
//! docs/API-DESIGN.md's error table.

use std::collections::BTreeSet;
use std::path::Path;

/// The string literal at the start of `s` (after whitespace), if any.
fn literal(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('"')?;
    Some(&s[..s.find('"')?])
}

fn is_code(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Codes in one source file: `ApiError::validation("…"`, `bad_request("…"`, `code: "…"`,
/// `NotFound("what")` (`what_not_found`) and the fixed codes of `ApiError::code`.
fn codes_in(source: &str, into: &mut BTreeSet<String>) {
    for marker in ["validation(", "bad_request(", "code: ", "=> \""] {
        for (at, _) in source.match_indices(marker) {
            let rest = &source[at + marker.len()..];
            let rest = if marker == "=> \"" {
                &source[at + 3..]
            } else {
                rest
            };
            if let Some(code) = literal(rest).filter(|c| is_code(c)) {
                if marker != "=> \"" || rest[code.len() + 2..].starts_with(".into()") {
                    into.insert(code.to_owned());
                }
            }
        }
    }
    for (at, _) in source.match_indices("NotFound(") {
        if let Some(what) = literal(&source[at + "NotFound(".len()..]).filter(|c| is_code(c)) {
            into.insert(format!("{what}_not_found"));
        }
    }
}

fn walk(dir: &Path, into: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            codes_in(&std::fs::read_to_string(&path).unwrap(), into);
        }
    }
}

#[test]
fn every_api_error_code_is_in_the_api_design_error_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut codes = BTreeSet::new();
    walk(&root.join("src/http"), &mut codes);
    // The scan finds the codes it must (a broken scan would pass vacuously).
    for known in [
        "unauthorized",
        "internal_error",
        "invalid_name",
        "channel_not_found",
    ] {
        assert!(codes.contains(known), "scan missed {known}: {codes:?}");
    }
    let doc = std::fs::read_to_string(root.join("docs/API-DESIGN.md")).unwrap();
    let table: String = doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .collect();
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| !table.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes missing from docs/API-DESIGN.md's table: {missing:?}"
    );
}
