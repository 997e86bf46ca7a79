//! The closing table of `make bench`: every bench binary appends its judged figures (figure,
//! goal, measured, met) to the file named by `BENCH_SUMMARY`, and the Makefile prints the
//! table once all benches ran. Without `BENCH_SUMMARY` (a bench run on its own) nothing is
//! written; the figures are printed as they are measured either way.

use std::io::Write as _;

/// Appends one row; `met` is `None` for figures printed without a goal (baselines).
pub fn record(figure: &str, goal: &str, measured: &str, met: Option<bool>) {
    let Ok(path) = std::env::var("BENCH_SUMMARY") else {
        return;
    };
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "-",
    };
    let row = format!("{figure}\t{goal}\t{measured}\t{verdict}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(row.as_bytes()));
    if let Err(e) = written {
        eprintln!("bench summary: cannot append to {path}: {e}");
    }
}
