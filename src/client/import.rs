//! `herald subscribers import`: a CSV of addresses subscribed in batches through
//! `POST /v1/channels/{id}/subscribers/batch`, with a report of every refused row.
//!
//! The file holds one address per line, in the first column or in the column named `address`
//! of a header row; blank lines and lines starting with `#` are ignored. herald validates
//! the addresses (the same rules as every other call); its per-entry reasons are mapped back
//! to the line numbers they came from.

use std::collections::HashMap;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{segment, Client, ClientError};

/// One address read from the file, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: usize,
    pub address: String,
}

/// A row herald (or the reader) refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub address: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Newly subscribed or re-activated.
    pub added: u64,
    /// Already subscribed (including repeats within the file).
    pub already: u64,
    /// Refused rows, in line order.
    pub errors: Vec<RowError>,
}

/// Reads the address rows of a CSV text; rows without any address are reported as errors.
pub fn read_csv(text: &str) -> (Vec<CsvRow>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut column = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed
            .split(',')
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        // A header row names the columns; it holds no address itself.
        if rows.is_empty() && errors.is_empty() && !fields.iter().any(|f| f.starts_with("0x")) {
            if let Some(at) = fields
                .iter()
                .position(|f| f.eq_ignore_ascii_case("address"))
            {
                column = at;
                continue;
            }
        }
        match fields.get(column).filter(|f| !f.is_empty()) {
            Some(address) => rows.push(CsvRow {
                line,
                address: (*address).to_owned(),
            }),
            None => errors.push(RowError {
                line,
                address: String::new(),
                reason: "no address in this row".into(),
            }),
        }
    }
    (rows, errors)
}

/// Subscribes `rows` to `channel` in batches of `batch` addresses, advancing a progress bar
/// (on stderr, when that is a terminal) by rows sent. `read_errors` (from [`read_csv`]) go
/// into the report with herald's refusals. A batch herald refuses as a whole (quota, rate,
/// unknown channel) stops the import: the error says so and the earlier batches stay
/// imported (running the same file again is harmless: they come back as `already`).
pub async fn import_csv(
    client: &Client,
    channel: &str,
    rows: Vec<CsvRow>,
    read_errors: Vec<RowError>,
    batch: usize,
) -> Result<ImportReport, ClientError> {
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {wide_bar} {pos}/{len} rows ({msg}) ETA {eta}",
        )
        .expect("the template is valid"),
    );
    let path = format!("/v1/channels/{}/subscribers/batch", segment(channel));
    let mut report = ImportReport {
        errors: read_errors,
        ..ImportReport::default()
    };
    for chunk in rows.chunks(batch.max(1)) {
        let addresses: Vec<&str> = chunk.iter().map(|r| r.address.as_str()).collect();
        let answer = client
            .post(&path, &json!({ "addresses": addresses }), &[])
            .await?;
        report.added += answer["added"].as_u64().unwrap_or(0);
        report.already += answer["already"].as_u64().unwrap_or(0);
        report
            .errors
            .extend(refused_rows(chunk, answer["invalid"].as_array()));
        bar.inc(chunk.len() as u64);
        bar.set_message(format!(
            "{} added, {} already, {} refused",
            report.added,
            report.already,
            report.errors.len()
        ));
    }
    bar.finish();
    report.errors.sort_by_key(|e| e.line);
    Ok(report)
}

/// Maps herald's `invalid` entries (address + reason) back to the rows that carried them; an
/// address repeated on several refused lines is reported on each.
fn refused_rows(chunk: &[CsvRow], invalid: Option<&Vec<serde_json::Value>>) -> Vec<RowError> {
    let mut reasons: HashMap<&str, &str> = HashMap::new();
    for entry in invalid.into_iter().flatten() {
        if let (Some(address), Some(reason)) = (entry["address"].as_str(), entry["reason"].as_str())
        {
            reasons.insert(address, reason);
        }
    }
    chunk
        .iter()
        .filter_map(|row| {
            reasons.get(row.address.as_str()).map(|reason| RowError {
                line: row.line,
                address: row.address.clone(),
                reason: (*reason).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_picks_the_address_column_and_blank_rows_are_skipped() {
        let text = "name,address\n\nalice,0xabc\n# comment\nbob,\n";
        let (rows, errors) = read_csv(text);
        assert_eq!(
            rows,
            vec![CsvRow {
                line: 3,
                address: "0xabc".into()
            }]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 5);
    }

    #[test]
    fn without_a_header_the_first_column_is_the_address() {
        let (rows, errors) = read_csv("\"0x01\",x\n0x02\n");
        let lines: Vec<_> = rows.iter().map(|r| (r.line, r.address.as_str())).collect();
        assert_eq!(lines, vec![(1, "0x01"), (2, "0x02")]);
        assert!(errors.is_empty());
    }
}
