//! A handle on `interop/sdk-driver.mjs`: the official XMTP node SDK in a child process,
//! spoken to in JSON lines, answered in order.
//!
//! Shared by two packages' tests: these interop proofs and herald's integration tests
//! (`tests/it/sdk.rs` includes this file), so it finds `interop/` from either manifest.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long one SDK call may take before the test fails (generous: the machine may be loaded).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace's `interop/` folder: the first one holding the driver, from the including
/// package's manifest upward.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("interop"))
        .find(|dir| dir.join("sdk-driver.mjs").exists())
        .expect("interop/sdk-driver.mjs exists in the workspace")
}

/// Fails the test (never skips) when the SDK is not installed.
pub fn require_sdk() {
    let modules = interop_dir().join("node_modules/@xmtp/node-sdk");
    assert!(
        modules.exists(),
        "the official XMTP SDK is not installed: expected {}. Run `interop/setup.sh` \
         (npm install of @xmtp/node-sdk 6.0.0 plus the glibc shim) before these tests.",
        modules.display()
    );
}

pub struct Sdk {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Sdk {
    pub async fn start() -> Sdk {
        Self::start_with_env(&[]).await
    }

    /// Starts the driver with extra environment variables (e.g. `SSL_CERT_FILE`, which the
    /// SDK's TLS client reads for its trusted roots).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Sdk {
        require_sdk();
        let mut child = Command::new("node")
            .arg("sdk-driver.mjs")
            .envs(env.iter().copied())
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the SDK driver");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut sdk = Sdk {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let ready = sdk.read_reply().await;
        assert_eq!(ready["result"], "ready", "driver did not start: {ready}");
        sdk
    }

    async fn read_reply(&mut self) -> Value {
        let line = tokio::time::timeout(CALL_TIMEOUT, self.lines.next_line())
            .await
            .expect("SDK driver timed out")
            .expect("reading SDK driver output")
            .expect("SDK driver exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad driver line {line}: {e}"))
    }

    /// Runs a command; panics with the SDK's error if it failed.
    pub async fn call(&mut self, cmd: &str, mut args: Value) -> Value {
        self.try_call(cmd, args.take())
            .await
            .unwrap_or_else(|e| panic!("SDK {cmd} failed: {e}"))
    }

    pub async fn try_call(&mut self, cmd: &str, args: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = args;
        req["id"] = json!(id);
        req["cmd"] = json!(cmd);
        let line = format!("{req}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let reply = self.read_reply().await;
        assert_eq!(reply["id"], json!(id), "out-of-order reply {reply}");
        if reply["ok"] == json!(true) {
            Ok(reply["result"].clone())
        } else {
            Err(reply["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    /// Registers an SDK client `name` for wallet `key` (hex) against `api_url`.
    pub async fn create(&mut self, name: &str, key: &str, api_url: &str) -> SdkClient {
        let r = self
            .call(
                "create",
                json!({"name": name, "key": key, "apiUrl": api_url}),
            )
            .await;
        SdkClient {
            name: name.to_owned(),
            inbox_id: r["inboxId"].as_str().unwrap().to_owned(),
            installation_id: r["installationId"].as_str().unwrap().to_owned(),
            address: r["address"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers an SDK client `name` (wallet `key`) that speaks d14n only: writes through the
    /// gateway at `gateway`, reads from the nodes its `GetNodes` lists. `api_url` is the v3
    /// URL the SDK must not need (pass a closed port to prove it).
    pub async fn create_d14n(
        &mut self,
        name: &str,
        key: &str,
        gateway: &str,
        api_url: &str,
    ) -> SdkClient {
        let r = self
            .call(
                "create",
                json!({"name": name, "key": key, "apiUrl": api_url, "gatewayHost": gateway}),
            )
            .await;
        SdkClient {
            name: name.to_owned(),
            inbox_id: r["inboxId"].as_str().unwrap().to_owned(),
            installation_id: r["installationId"].as_str().unwrap().to_owned(),
            address: r["address"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers an SDK client `name` with a wallet of its own against `api_url`.
    pub async fn user(&mut self, name: &str, api_url: &str) -> SdkClient {
        let (_, key) = random_key();
        self.create(name, &key, api_url).await
    }

    /// Registers one SDK client per name, all installations of wallet `key` (one inbox).
    pub async fn installations(
        &mut self,
        names: &[&str],
        key: &str,
        api_url: &str,
    ) -> Vec<SdkClient> {
        let mut clients = Vec::new();
        for name in names {
            clients.push(self.create(name, key, api_url).await);
        }
        clients
    }

    /// The DM with `peer_inbox_id` as `who` sees it after a sync, if any.
    pub async fn find_dm(&mut self, who: &SdkClient, peer_inbox_id: &str) -> Option<String> {
        self.find_dm_of(&who.name, peer_inbox_id).await
    }

    /// [`Sdk::find_dm`] for the client called `name`.
    pub async fn find_dm_of(&mut self, name: &str, peer_inbox_id: &str) -> Option<String> {
        self.call("sync", json!({ "name": name })).await;
        let list = self.call("list", json!({ "name": name })).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["peerInboxId"] == json!(peer_inbox_id))
            .map(|c| c["id"].as_str().unwrap().to_owned())
    }

    /// Texts of the conversation, oldest first (non-text messages excluded).
    pub async fn texts(&mut self, who: &SdkClient, conversation_id: &str) -> Vec<String> {
        self.texts_of(&who.name, conversation_id).await
    }

    /// [`Sdk::texts`] for the client called `name`.
    pub async fn texts_of(&mut self, name: &str, conversation_id: &str) -> Vec<String> {
        let msgs = self
            .call(
                "messages",
                json!({"name": name, "conversationId": conversation_id}),
            )
            .await;
        msgs.as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// Polls `who`'s stream buffer (every 250 ms, up to 15 s) until `done` holds.
    pub async fn wait_streamed(&mut self, who: &SdkClient, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..60 {
            last = self.call("streamed", json!({"name": who.name})).await;
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "stream of {} never delivered the expected items; saw {last}",
            who.name
        );
    }

    pub async fn shutdown(mut self) {
        let _ = self.try_call("exit", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// An SDK client the driver created (one installation of a wallet's inbox).
#[derive(Debug, Clone)]
#[allow(dead_code)] // Each including package reads some of the fields.
pub struct SdkClient {
    pub name: String,
    pub inbox_id: String,
    pub installation_id: String,
    /// The wallet address, lowercase.
    pub address: String,
}

/// A random wallet private key as 0x-hex, for the SDK.
pub fn random_key() -> ([u8; 32], String) {
    let k: [u8; 32] = rand::random();
    (k, format!("0x{}", hex::encode(k)))
}
