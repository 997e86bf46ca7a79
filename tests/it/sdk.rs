//! The official `@xmtp/node-sdk` as a test peer, through `interop/sdk-driver.mjs` (JSON lines
//! over stdin/stdout). Fails, never skips, when the SDK is not installed (`make test-deps`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// One SDK call may take this long on a loaded machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Sdk {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Sdk {
    pub async fn start() -> Sdk {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
        assert!(
            dir.join("node_modules/@xmtp/node-sdk").exists(),
            "the official XMTP SDK is not installed; run `make test-deps` (interop/setup.sh)"
        );
        let mut child = Command::new("node")
            .arg("sdk-driver.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the SDK driver");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut sdk = Sdk {
            _child: child,
            stdin,
            lines,
            next_id: 1,
        };
        let ready = sdk.read().await;
        assert_eq!(ready["result"], "ready", "driver did not start: {ready}");
        sdk
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(CALL_TIMEOUT, self.lines.next_line())
            .await
            .expect("SDK driver answers in time")
            .expect("SDK driver output readable")
            .expect("SDK driver still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad driver line {line}: {e}"))
    }

    /// Runs a driver command; panics with the SDK's error on failure.
    pub async fn call(&mut self, cmd: &str, mut req: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        req["cmd"] = json!(cmd);
        self.stdin
            .write_all(format!("{req}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let reply = self.read().await;
        assert_eq!(reply["id"], json!(id), "out-of-order reply {reply}");
        assert_eq!(reply["ok"], json!(true), "SDK {cmd} failed: {reply}");
        reply["result"].clone()
    }

    /// Registers SDK client `name` for a wallet key (0x-hex) on the node at `url`.
    pub async fn create(&mut self, name: &str, key: &str, url: &str) -> Value {
        self.call("create", json!({"name": name, "key": key, "apiUrl": url}))
            .await
    }

    /// Texts `name` reads in its DM with `peer_inbox_id`, after a sync (None: no such DM).
    pub async fn dm_texts(&mut self, name: &str, peer_inbox_id: &str) -> Option<Vec<String>> {
        self.call("sync", json!({ "name": name })).await;
        let list = self.call("list", json!({ "name": name })).await;
        let conv = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["peerInboxId"] == json!(peer_inbox_id))?["id"]
            .as_str()?
            .to_owned();
        let msgs = self
            .call("messages", json!({"name": name, "conversationId": conv}))
            .await;
        Some(
            msgs.as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}
