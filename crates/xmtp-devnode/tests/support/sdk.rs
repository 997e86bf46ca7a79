//! Runs the official-SDK scripts of `interop/` with `node` and reports their outcome.
//! The scripts' dependencies come from `interop/setup.sh`; a missing install fails the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// Generous bound for one script on a busy 2-core machine (they take ~2 s idle).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Panics with a clear message unless the pinned SDK is installed.
pub fn require_harness() {
    let sdk = interop_dir().join("node_modules/@xmtp/node-sdk");
    assert!(
        sdk.is_dir(),
        "the official SDK harness is not installed: run `interop/setup.sh` first (expected {})",
        sdk.display()
    );
}

/// Runs `node SCRIPT ARGS... --timeout-ms N` in `interop/`; panics with its output unless it
/// exits 0 and reports PASS.
pub async fn run_script(script: &str, args: &[&str]) {
    require_harness();
    let budget = (SCRIPT_TIMEOUT.as_millis() - 5_000).to_string();
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .args(["--timeout-ms", &budget])
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` must be installed to run the SDK conformance tests");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("script ran");
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success() && out.contains("PASS"),
        "{script} {args:?} failed against the devnode ({})\n--- stdout\n{out}\n--- stderr\n{err}",
        output.status
    );
}
