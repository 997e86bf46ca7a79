//! The browser pages in headless Chromium (Debian's `chromium`, driven by npm `puppeteer-core`
//! from `interop/browser-pages.mjs`): the subscribe page with an injected EIP-1193 wallet, and
//! the console. Each run also checks that no request left herald's origin and that no console
//! error was logged, and takes the screenshots linked from the README
//! (`docs/screenshots/*.png`, rewritten with `HERALD_UPDATE_SCREENSHOTS=1`). Fails, never skips, without Chromium or the npm packages
//! (`make test-deps`).

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::wait_completed;
use crate::sdk::driver::{interop_dir, require_sdk};
use crate::sdk::Sdk;

mod console;
mod subscribe;

/// Where a screenshot goes: target/screenshots on every run, docs/screenshots (the committed
/// ones the README shows) when `HERALD_UPDATE_SCREENSHOTS=1`, so a test run leaves the checkout
/// clean (the pictures hold fresh ids and times each run).
fn screenshot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = if std::env::var("HERALD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir.join(name)
}

/// `interop/browser-pages.mjs <mode>` running: its stdout lines, and stdin for handshakes.
struct Pages {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Pages {
    async fn start(mode: &str, env: &[(&str, String)]) -> Pages {
        require_sdk();
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromium).exists(),
            "{chromium} is missing: install Debian's chromium (`make test-deps`)"
        );
        assert!(
            interop_dir().join("node_modules/puppeteer-core").exists(),
            "puppeteer-core is missing: run interop/setup.sh (`make test-deps`)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("browser-pages.mjs")
            .arg(mode)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Pages { child, lines }
    }

    /// The script's next stdout line as JSON; a failure report fails the test.
    async fn next(&mut self) -> Value {
        let line = self
            .lines
            .next_line()
            .await
            .expect("reading the browser script")
            .expect("the browser script ended without a result");
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("browser script printed {line:?}: {e}"));
        assert_ne!(value["ok"], false, "browser script failed: {value:#}");
        value
    }

    async fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The final result: fails the test if a request left herald's origin or the console
    /// logged an error.
    async fn finish(mut self) -> Value {
        let result = self.next().await;
        assert_eq!(result["ok"], true, "browser script failed: {result:#}");
        assert_eq!(
            result["offsite"],
            json!([]),
            "requests left herald's origin: {result:#}"
        );
        assert_eq!(
            result["consoleErrors"],
            json!([]),
            "console errors: {result:#}"
        );
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "browser script exit: {status}");
        result
    }
}
