//! Announcement payload rules: text size limit and delivery priority.

use std::fmt;
use std::str::FromStr;

/// Largest accepted announcement text, in bytes of UTF-8. XMTP messages can be larger, but an
/// announcement is meant to be read on a phone; the limit also bounds per-delivery storage.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Validated announcement text: non-empty (after trimming) and at most [`MAX_TEXT_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementText(String);

/// Why announcement text was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    #[error("text must not be empty")]
    Empty,
    #[error("text is {0} bytes; the limit is 16384 bytes of UTF-8")]
    TooLong(usize),
}

impl AnnouncementText {
    pub fn parse(raw: String) -> Result<Self, TextError> {
        if raw.trim().is_empty() {
            return Err(TextError::Empty);
        }
        if raw.len() > MAX_TEXT_BYTES {
            return Err(TextError::TooLong(raw.len()));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Delivery priority: the pipeline drains `critical` before `normal` before `bulk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    Critical,
    #[default]
    Normal,
    Bulk,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Bulk => "bulk",
        }
    }
}

impl FromStr for Priority {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "critical" => Ok(Priority::Critical),
            "normal" => Ok(Priority::Normal),
            "bulk" => Ok(Priority::Bulk),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limit_counts_utf8_bytes() {
        assert!(AnnouncementText::parse("é".repeat(MAX_TEXT_BYTES / 2)).is_ok());
        let err = AnnouncementText::parse("é".repeat(MAX_TEXT_BYTES / 2 + 1)).unwrap_err();
        assert_eq!(err, TextError::TooLong(MAX_TEXT_BYTES + 2));
        assert_eq!(AnnouncementText::parse("  ".into()), Err(TextError::Empty));
    }
}
