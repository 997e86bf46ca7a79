//! Display names of tenants and channels.

/// Longest tenant or channel name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a display name was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("name must be 1 to 200 characters")]
pub struct NameError;

/// Trims a display name and checks it is 1 to [`MAX_NAME_CHARS`] characters.
pub fn parse_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError);
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(parse_name("  Acme  ").unwrap(), "Acme");
        assert_eq!(parse_name("   "), Err(NameError));
        assert!(parse_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert_eq!(parse_name(&"a".repeat(MAX_NAME_CHARS + 1)), Err(NameError));
    }
}
