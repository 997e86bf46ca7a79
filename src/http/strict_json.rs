//! Checks every JSON body passes before it is deserialized into a DTO:
//!
//! - the top level is an object (serde would otherwise fill a struct from an array by position,
//!   so `["renamed", "d"]` would rename a channel);
//! - no object repeats a key (serde's derived structs refuse some duplicates and
//!   `serde_json::Value` silently keeps the last one; here every body is refused alike);
//! - no string, key or value, holds a control character other than tab, line feed and carriage
//!   return. NUL in particular cannot be stored in a Postgres `TEXT` column, and none of them
//!   belongs in a name, a description or a message.
//!
//! The walk streams through the document with serde_json, without building a tree; syntax
//! errors are left for the real deserialization to report.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Longest field path quoted back in an error.
const MAX_PATH_CHARS: usize = 120;

/// Why a syntactically valid body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The top-level value is not an object.
    NotAnObject,
    /// An object names the same key twice; the path of the repeated key.
    DuplicateKey(String),
    /// A string holds a forbidden control character; the path of the field.
    ControlCharacter(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("the body must be a JSON object"),
            Self::DuplicateKey(path) => write!(f, "`{path}` appears more than once"),
            Self::ControlCharacter(path) => write!(
                f,
                "`{path}` contains a control character (only tab, line feed and carriage return are allowed)"
            ),
        }
    }
}

/// Checks `body`; `Ok` also when it is not valid JSON at all (the caller's parser says why).
pub fn check(body: &[u8]) -> Result<(), Problem> {
    let problem = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let root = Node {
        path: &Path::Root,
        problem: &problem,
    };
    let result = root.deserialize(&mut de);
    if let Some(p) = problem.into_inner() {
        return Err(p);
    }
    match result {
        Ok(Kind::Object) | Err(_) => Ok(()),
        Ok(Kind::Other) => Err(Problem::NotAnObject),
    }
}

/// Whether `text` holds a control character other than tab, line feed and carriage return.
pub fn has_control_character(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r') && (c as u32) < 0x80)
}

/// Where in the document a value sits, as a chain of parents (built on the stack).
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => Ok(()),
            Self::Key(Path::Root, key) => write!(f, "{}", key.escape_debug()),
            Self::Key(parent, key) => write!(f, "{parent}.{}", key.escape_debug()),
            Self::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path<'_> {
    fn shown(&self) -> String {
        let full = self.to_string();
        let full = if full.is_empty() {
            "(body)".into()
        } else {
            full
        };
        match full.char_indices().nth(MAX_PATH_CHARS) {
            Some((cut, _)) => format!("{}…", &full[..cut]),
            None => full,
        }
    }
}

/// What a walked value was, as far as the top-level check cares.
enum Kind {
    Object,
    Other,
}

/// A value at `path`; records the first problem found in `problem`.
#[derive(Clone, Copy)]
struct Node<'a> {
    path: &'a Path<'a>,
    problem: &'a RefCell<Option<Problem>>,
}

impl Node<'_> {
    fn fail<E: de::Error>(&self, problem: Problem) -> E {
        self.problem.borrow_mut().get_or_insert(problem);
        E::custom("refused")
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Kind, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Kind, E> {
        if has_control_character(text) {
            return Err(self.fail(Problem::ControlCharacter(self.path.shown())));
        }
        Ok(Kind::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut index = 0;
        loop {
            let path = Path::Index(self.path, index);
            let item = Node {
                path: &path,
                problem: self.problem,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(Kind::Other);
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = Path::Key(self.path, &key);
            if has_control_character(&key) {
                return Err(self.fail(Problem::ControlCharacter(path.shown())));
            }
            if seen.contains(&key) {
                return Err(self.fail(Problem::DuplicateKey(path.shown())));
            }
            map.next_value_seed(Node {
                path: &path,
                problem: self.problem,
            })?;
            seen.insert(key);
        }
        Ok(Kind::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        assert_eq!(check(br#"{"a": [1, {"b": "x\ty\n"}], "c": null}"#), Ok(()));
        // Not JSON: left to the real parser.
        assert_eq!(check(b"{\"a\": "), Ok(()));
    }

    #[test]
    fn refuses_arrays_and_scalars_at_the_top() {
        assert_eq!(check(br#"["renamed", "d"]"#), Err(Problem::NotAnObject));
        assert_eq!(check(b"17"), Err(Problem::NotAnObject));
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        assert_eq!(
            check(br#"{"name": "a", "name": "b"}"#),
            Err(Problem::DuplicateKey("name".into()))
        );
        assert_eq!(
            check(br#"{"x": [{}, {"k": 1, "k": 2}]}"#),
            Err(Problem::DuplicateKey("x[1].k".into()))
        );
        // The same key in sibling objects is fine.
        assert_eq!(check(br#"{"x": [{"k": 1}, {"k": 2}]}"#), Ok(()));
    }

    #[test]
    fn refuses_control_characters_in_values_and_keys() {
        assert_eq!(
            check(br#"{"name": "a\u0000b"}"#),
            Err(Problem::ControlCharacter("name".into()))
        );
        assert_eq!(
            check(br#"{"items": ["ok", "bell\u0007"]}"#),
            Err(Problem::ControlCharacter("items[1]".into()))
        );
        assert_eq!(
            check(br#"{"a\u001b": 1}"#),
            Err(Problem::ControlCharacter("a\\u{1b}".into()))
        );
    }
}
