//! The official SDK baseline of the broadcast bench: runs interop/sdk-bench.mjs (see its
//! header for the two modes) against the same node herald used, and prints and records its
//! figures next to herald's.

use std::collections::HashSet;
use std::process::Stdio;

use serde_json::Value;

use crate::{knob, summary};

/// The official SDK's figures through the same node: (a) capacity, recipients over fresh
/// clients inside the SDK's own call limit, best of concurrency 16 and 64, with herald's
/// ratios against it; (b) as shipped, one client past its limit.
pub async fn baselines(
    node_url: &str,
    recipients: &[(String, String)],
    sdk_n: usize,
    n: usize,
    first_rate: f64,
    repeat_rate: f64,
    backend: &str,
) {
    let sample =
        |k: usize| -> Vec<&str> { recipients.iter().take(k).map(|(_, i)| i.as_str()).collect() };
    // (a) capacity: the SDK unthrottled by its own client limit, best of two concurrencies.
    let mut capacity: Option<(f64, f64)> = None;
    if sdk_n == 0 {
        println!("official SDK baseline skipped: BENCH_SDK_SAMPLE=0");
    }
    for concurrency in [16, 64] {
        if sdk_n == 0 {
            break;
        }
        match sdk(node_url, &sample(sdk_n), SdkRun::Capacity { concurrency }).await {
            Ok(run) => {
                println!(
                    "official SDK (@xmtp/node-sdk 6.0.0) capacity: {sdk_n} of the same recipients \
                     over {} fresh clients of at most 400 (none past the SDK's 5,000 calls per \
                     60 s), concurrency {concurrency}",
                    run["clients"]
                );
                print_sdk("  SDK first contact (createDm + sendText)", &run["first"]);
                print_sdk("  SDK repeat (sendText on existing DMs)", &run["repeat"]);
                let (f, r) = (phase_rate(&run["first"]), phase_rate(&run["repeat"]));
                let (bf, br) = capacity.unwrap_or((0.0, 0.0));
                capacity = Some((bf.max(f), br.max(r)));
            }
            Err(e) => println!("official SDK capacity run (concurrency {concurrency}) failed: {e}"),
        }
    }
    if let Some((sdk_first, sdk_repeat)) = capacity {
        let (first_ratio, repeat_ratio) = (first_rate / sdk_first, repeat_rate / sdk_repeat);
        println!(
            "SDK capacity (best of concurrency 16 and 64): {sdk_first:.0} new DMs/s, \
             {sdk_repeat:.0} messages/s; ratio herald/SDK: first contact {first_ratio:.1}x \
             (goal >= 15x), repeat {repeat_ratio:.1}x"
        );
        summary::record(
            "SDK capacity, first contact (baseline)",
            "-",
            &format!("{sdk_first:.0} new DMs/s"),
            None,
        );
        summary::record(
            "SDK capacity, repeat (baseline)",
            "-",
            &format!("{sdk_repeat:.0} messages/s"),
            None,
        );
        summary::record(
            &format!("ratio herald/SDK capacity, first contact ({backend})"),
            ">= 15x",
            &format!("{first_ratio:.1}x"),
            Some(first_ratio >= 15.0),
        );
        summary::record(
            &format!("ratio herald/SDK capacity, repeat ({backend})"),
            "-",
            &format!("{repeat_ratio:.1}x"),
            None,
        );
    }
    // (b) as shipped: one client past its rate limit, what an app built on the SDK gets.
    let shipped_n = knob::<usize>("BENCH_SDK_SHIPPED", 1_200).min(n);
    if shipped_n > 0 {
        match sdk(node_url, &sample(shipped_n), SdkRun::Shipped { rounds: 3 }).await {
            Ok(run) => {
                println!(
                    "official SDK as shipped: one client, {shipped_n} new DMs then 3 sends each \
                     (each phase past two of its 60 s windows), concurrency 16"
                );
                print_sdk("  SDK first contact (createDm + sendText)", &run["first"]);
                print_sdk("  SDK repeat (sendText on existing DMs)", &run["repeat"]);
                summary::record(
                    "SDK as shipped (one client), first contact",
                    "-",
                    &format!("{:.1} new DMs/s", phase_rate(&run["first"])),
                    None,
                );
                summary::record(
                    "SDK as shipped (one client), repeat",
                    "-",
                    &format!("{:.1} messages/s", phase_rate(&run["repeat"])),
                    None,
                );
            }
            Err(e) => println!("official SDK as-shipped run failed: {e}"),
        }
    }
}

/// How interop/sdk-bench.mjs runs (see its header).
enum SdkRun {
    /// Recipients split over fresh clients, none past the SDK's own call limit.
    Capacity { concurrency: usize },
    /// One client for all recipients, `rounds` repeat sends per DM.
    Shipped { rounds: usize },
}

/// Runs interop/sdk-bench.mjs against the node; returns its JSON result.
async fn sdk(node_url: &str, inboxes: &[&str], run: SdkRun) -> anyhow::Result<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
    anyhow::ensure!(
        dir.join("node_modules/@xmtp/node-sdk").exists(),
        "interop/node_modules missing"
    );
    let list = tempfile::NamedTempFile::new()?;
    std::fs::write(
        list.path(),
        inboxes
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    let out = tokio::process::Command::new("node")
        .current_dir(&dir)
        .arg("sdk-bench.mjs")
        .args(["--api", node_url])
        .args(match run {
            SdkRun::Capacity { concurrency } => vec![
                "--mode".to_owned(),
                "capacity".to_owned(),
                "--concurrency".to_owned(),
                concurrency.to_string(),
            ],
            SdkRun::Shipped { rounds } => vec![
                "--mode".to_owned(),
                "shipped".to_owned(),
                "--concurrency".to_owned(),
                "16".to_owned(),
                "--rounds".to_owned(),
                rounds.to_string(),
            ],
        })
        .arg("--inboxes")
        .arg(list.path())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "sdk-bench.mjs exited with {}",
        out.status
    );
    let line = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(line.lines().last().unwrap_or("null"))?)
}

fn phase_rate(phase: &Value) -> f64 {
    phase["sent"].as_f64().unwrap_or(0.0) / phase["seconds"].as_f64().unwrap_or(1.0).max(1e-9)
}

fn print_sdk(what: &str, phase: &Value) {
    println!(
        "{what}: {} sent in {:.2} s = {:.1} messages/s (failed {}{})",
        phase["sent"],
        phase["seconds"].as_f64().unwrap_or(0.0),
        phase_rate(phase),
        phase["failed"],
        phase["firstError"]
            .as_str()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
}
