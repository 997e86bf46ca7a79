//! The node's conformance test: the official XMTP SDK (`@xmtp/node-sdk` 6.0.0, i.e. libxmtp
//! 1.10) runs a full DM round trip (`interop/dm-roundtrip.mjs`) against an in-process node.
//!
//! Needs `node` and the harness installed by `interop/setup.sh`. It fails (never skips)
//! when they are missing, so CI cannot pass without actually running the official client.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use xmtp_devnode::{DevNode, DevNodeConfig};

/// Generous bound for the whole script on a busy 2-core machine (it takes ~2 s idle).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_dm_round_trip() {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@xmtp/node-sdk").is_dir(),
        "the official SDK harness is not installed: run `interop/setup.sh` first (expected {})",
        dir.join("node_modules").display()
    );
    let node = DevNode::start(DevNodeConfig::default())
        .await
        .expect("devnode starts");
    let mut child = tokio::process::Command::new("node")
        .arg("dm-roundtrip.mjs")
        .arg("--api")
        .arg(node.url())
        .arg("--timeout-ms")
        .arg((SCRIPT_TIMEOUT.as_millis() - 5_000).to_string())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` must be installed to run the SDK conformance test");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let read = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut r, &mut s).await;
        s
    };
    let (out, err) = (
        tokio::spawn(read(Box::new(stdout))),
        tokio::spawn(read(Box::new(stderr))),
    );
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    let _ = child.kill().await;
    let (out, err) = (out.await.unwrap_or_default(), err.await.unwrap_or_default());
    node.shutdown().await;
    let status = status.unwrap_or_else(|_| panic!("dm-roundtrip.mjs timed out\n{out}\n{err}"));
    assert!(
        status.expect("script ran").success(),
        "official SDK DM round trip failed against the devnode\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(out.contains("PASS"), "script did not report PASS\n{out}");
}
