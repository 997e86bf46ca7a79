//! The official XMTP node SDK (`interop/sdk-driver.mjs`) as a subscriber: a child process
//! driven with one JSON request per line, answered in order.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest a single SDK request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SdkUser {
    pub name: String,
    pub inbox_id: String,
    pub address: String,
}

pub struct SdkDriver {
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
    seq: u64,
}

impl SdkDriver {
    /// Starts the driver; fails (never skips) when `interop/setup.sh` has not been run.
    pub async fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
        assert!(
            dir.join("node_modules/@xmtp/node-sdk").exists(),
            "official XMTP SDK missing: run `interop/setup.sh` (or `make test-deps`)"
        );
        let mut child = Command::new("node")
            .arg("sdk-driver.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the SDK driver");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut driver = Self {
            child,
            input,
            output,
            seq: 0,
        };
        let hello = driver.next_line().await;
        assert_eq!(hello["result"], "ready", "{hello}");
        driver
    }

    async fn next_line(&mut self) -> Value {
        let line = tokio::time::timeout(REQUEST_TIMEOUT, self.output.next_line())
            .await
            .expect("SDK driver answered in time")
            .expect("SDK driver output readable")
            .expect("SDK driver still running");
        serde_json::from_str(&line).expect("SDK driver writes JSON lines")
    }

    /// Sends one request; panics with the SDK's error text on failure.
    pub async fn request(&mut self, cmd: &str, mut args: Value) -> Value {
        self.seq += 1;
        args["id"] = json!(self.seq);
        args["cmd"] = json!(cmd);
        self.input
            .write_all(format!("{args}\n").as_bytes())
            .await
            .unwrap();
        self.input.flush().await.unwrap();
        let answer = self.next_line().await;
        assert_eq!(answer["id"], json!(self.seq));
        assert_eq!(answer["ok"], json!(true), "SDK {cmd} failed: {answer}");
        answer["result"].clone()
    }

    /// A new SDK user with a random wallet, registered on the node at `api_url`.
    pub async fn user(&mut self, name: &str, api_url: &str) -> SdkUser {
        let key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
        let made = self
            .request(
                "create",
                json!({"name": name, "key": key, "apiUrl": api_url}),
            )
            .await;
        SdkUser {
            name: name.to_owned(),
            inbox_id: made["inboxId"].as_str().unwrap().to_owned(),
            address: made["address"].as_str().unwrap().to_owned(),
        }
    }

    /// Opens a DM from `user` to `peer_inbox`; returns the conversation id.
    pub async fn open_dm(&mut self, user: &SdkUser, peer_inbox: &str) -> String {
        let dm = self
            .request(
                "newDm",
                json!({"name": user.name, "peerInboxId": peer_inbox}),
            )
            .await;
        dm["id"].as_str().unwrap().to_owned()
    }

    /// The DM `user` has with `peer_inbox` after a sync, if any.
    pub async fn find_dm(&mut self, user: &SdkUser, peer_inbox: &str) -> Option<String> {
        self.request("sync", json!({"name": user.name})).await;
        let all = self.request("list", json!({"name": user.name})).await;
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["peerInboxId"] == json!(peer_inbox))
            .map(|c| c["id"].as_str().unwrap().to_owned())
    }

    pub async fn say(&mut self, user: &SdkUser, dm: &str, text: &str) {
        self.request(
            "reply",
            json!({"name": user.name, "conversationId": dm, "text": text}),
        )
        .await;
    }

    /// Every text in the DM as the SDK reads it after a sync, oldest first.
    pub async fn texts(&mut self, user: &SdkUser, dm: &str) -> Vec<String> {
        let messages = self
            .request("messages", json!({"name": user.name, "conversationId": dm}))
            .await;
        messages
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }

    pub async fn stop(mut self) {
        self.seq += 1;
        let bye = json!({"id": self.seq, "cmd": "exit"});
        let _ = self.input.write_all(format!("{bye}\n").as_bytes()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
