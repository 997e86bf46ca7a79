//! deploy/grafana/herald.json and deploy/prometheus/alerts.yml name only metrics herald
//! exports: every `herald_*` name in either file must be declared by a `counter!`, `gauge!`
//! or `histogram!` call in src/ (histograms with their `_bucket`, `_sum` and `_count`
//! series), and what a working app's `/metrics` shows must agree with those declarations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::{addresses, TestApp};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `herald_…` metric-like name in `text`.
fn referenced(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("herald_") {
        let start = at + found;
        let mut end = start + "herald_".len();
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        let boundary =
            start == 0 || !(word(bytes[start - 1]) || bytes[start - 1].is_ascii_uppercase());
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Metric name → kind (`counter`, `gauge`, `histogram`) for every metrics macro call in
/// `src/`, whether the name is a literal or a `const NAME: &str = "herald_…"`.
fn declared_in_source() -> BTreeMap<String, &'static str> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let sources: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut constants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for source in &sources {
        for line in source.lines() {
            let Some((_, rest)) = line.split_once("const ") else {
                continue;
            };
            let Some((ident, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            if let Some(value) = value.strip_suffix("\";") {
                constants
                    .entry(ident.trim().to_owned())
                    .or_default()
                    .push(value.to_owned());
            }
        }
    }
    let mut declared = BTreeMap::new();
    for source in &sources {
        for kind in ["counter", "gauge", "histogram"] {
            let call = format!("{kind}!(");
            for (at, _) in source.match_indices(&call) {
                let first = source[at + call.len()..]
                    .trim_start()
                    .split([',', ')'])
                    .next()
                    .unwrap()
                    .trim();
                let names = match first.strip_prefix('"') {
                    Some(literal) => vec![literal.trim_end_matches('"').to_owned()],
                    None => {
                        let ident = first.rsplit("::").next().unwrap();
                        constants.get(ident).cloned().unwrap_or_default()
                    }
                };
                for name in names {
                    declared.insert(name, kind);
                }
            }
        }
    }
    declared
}

/// Whether a series name is exported: declared, or a histogram's `_bucket`/`_sum`/`_count`.
fn exported(name: &str, declared: &BTreeMap<String, &'static str>) -> bool {
    declared.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| declared.get(base) == Some(&"histogram"))
        })
}

/// `# TYPE name kind` lines of a Prometheus text exposition, herald's only.
fn scraped_types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(name, _)| name.starts_with("herald_"))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

#[test]
fn the_checker_refuses_names_herald_does_not_export() {
    let declared = declared_in_source();
    assert_eq!(
        declared.get("herald_http_request_duration_seconds"),
        Some(&"histogram")
    );
    assert_eq!(declared.get("herald_chain_head_block"), Some(&"gauge"));
    assert!(exported(
        "herald_http_request_duration_seconds_bucket",
        &declared
    ));
    assert!(!exported("herald_deliveries_total_bucket", &declared));
    assert!(!exported("herald_made_up_total", &declared));
    // The NOTIFY channel is a string, not a metric.
    assert!(!exported("herald_deliveries", &declared));
    let found = referenced("rate(herald_a_total[5m]) / x_herald_b + herald_c_bucket");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["herald_a_total", "herald_c_bucket"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_name_only_metrics_herald_exports() {
    // A working app: an announcement fanned out and settled, so its series exist.
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("metrics").await;
    let channel = app.channel(&key, "metrics").await;
    app.subscribe(&key, &channel, &addresses(0x41, 2)).await;
    let created = app
        .post_announcement(&key, &channel, json!({ "text": "metrics" }))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    crate::pipeline::wait_completed(&app, &key, &id).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scraped = scraped_types(&text);
    let declared = declared_in_source();
    for (name, kind) in &scraped {
        assert_eq!(
            declared.get(name).copied(),
            Some(kind.as_str()),
            "{name} ({kind}) is exported but the source scan does not find it"
        );
    }
    for name in [
        "herald_http_requests_total",
        "herald_http_request_duration_seconds",
        "herald_deliveries_total",
        "herald_deliveries_pending",
        "herald_delivery_lag_seconds",
    ] {
        assert!(scraped.contains_key(name), "{name} missing from {text}");
    }

    let dashboard_text =
        std::fs::read_to_string(root().join("deploy/grafana/herald.json")).unwrap();
    let alerts_text = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    for (file, text) in [
        ("herald.json", &dashboard_text),
        ("alerts.yml", &alerts_text),
    ] {
        let unknown: Vec<String> = referenced(text)
            .into_iter()
            .filter(|n| !exported(n, &declared))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics herald does not export: {unknown:?}"
        );
    }

    // Shape: every panel queries something; every rule is complete.
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            !targets.is_empty() && targets.iter().all(|t| t["expr"].is_string()),
            "{panel}"
        );
    }
    let alerts: serde_norway::Value = serde_norway::from_str(&alerts_text).unwrap();
    let mut rules = 0;
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            rules += 1;
            for field in ["alert", "expr"] {
                assert!(rule[field].is_string(), "{field}: {rule:?}");
            }
            assert!(rule["labels"]["severity"].is_string(), "{rule:?}");
            assert!(rule["annotations"]["summary"].is_string(), "{rule:?}");
        }
    }
    assert!(rules >= 5);
    // What the issue asks each to cover.
    let shown = referenced(&dashboard_text);
    for wanted in [
        "herald_http_requests_total",
        "herald_http_request_duration_seconds_bucket",
        "herald_deliveries_pending",
        "herald_delivery_lag_seconds",
        "herald_deliveries_total",
        "herald_xmtp_rate_limited_total",
        "herald_chain_head_block",
        "herald_chain_cursor_lag_blocks",
    ] {
        assert!(shown.contains(wanted), "the dashboard shows {wanted}");
    }
    let alerted = referenced(&alerts_text);
    for wanted in [
        "herald_delivery_lag_seconds",
        "herald_deliveries_total",
        "herald_chain_cursor_block",
        "herald_xmtp_rate_limited_total",
    ] {
        assert!(alerted.contains(wanted), "an alert watches {wanted}");
    }
}
