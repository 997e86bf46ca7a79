//! The official `@xmtp/node-sdk` as a test peer, through `interop/sdk-driver.mjs` (JSON lines
//! over stdin/stdout, answered in order). Fails, never skips, when the SDK is not installed
//! (`make test-deps`). The pipeline tests use it as many recipients by name; the self-service
//! tests as subscribers ([`SdkUser`]) who open DMs and chat.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// One SDK call may take this long on a loaded machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// An SDK client the driver created, as the self-service tests address it.
pub struct SdkUser {
    pub name: String,
    pub inbox_id: String,
    pub address: String,
}

pub struct Sdk {
    child: Child,
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
            child,
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

    /// A new SDK user with a random wallet, registered on the node at `api_url`.
    pub async fn user(&mut self, name: &str, api_url: &str) -> SdkUser {
        let key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
        let made = self.create(name, &key, api_url).await;
        SdkUser {
            name: name.to_owned(),
            inbox_id: made["inboxId"].as_str().unwrap().to_owned(),
            address: made["address"].as_str().unwrap().to_owned(),
        }
    }

    /// Opens a DM from `user` to `peer_inbox`; returns the conversation id.
    pub async fn open_dm(&mut self, user: &SdkUser, peer_inbox: &str) -> String {
        let dm = self
            .call(
                "newDm",
                json!({"name": user.name, "peerInboxId": peer_inbox}),
            )
            .await;
        dm["id"].as_str().unwrap().to_owned()
    }

    /// Sends `text` from `user` into the DM `dm`.
    pub async fn say(&mut self, user: &SdkUser, dm: &str, text: &str) {
        self.call(
            "reply",
            json!({"name": user.name, "conversationId": dm, "text": text}),
        )
        .await;
    }

    /// Every text in the DM as the SDK reads it after a sync, oldest first.
    pub async fn texts(&mut self, user: &SdkUser, dm: &str) -> Vec<String> {
        self.conversation_texts(&user.name, dm).await
    }

    /// The DM `user` has with `peer_inbox` after a sync, if any.
    pub async fn find_dm(&mut self, user: &SdkUser, peer_inbox: &str) -> Option<String> {
        self.dm_with(&user.name, peer_inbox).await
    }

    /// Texts `name` reads in its DM with `peer_inbox_id`, after a sync (None: no such DM).
    pub async fn dm_texts(&mut self, name: &str, peer_inbox_id: &str) -> Option<Vec<String>> {
        let conv = self.dm_with(name, peer_inbox_id).await?;
        Some(self.conversation_texts(name, &conv).await)
    }

    async fn dm_with(&mut self, name: &str, peer_inbox: &str) -> Option<String> {
        self.call("sync", json!({ "name": name })).await;
        let list = self.call("list", json!({ "name": name })).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["peerInboxId"] == json!(peer_inbox))
            .map(|c| c["id"].as_str().unwrap().to_owned())
    }

    async fn conversation_texts(&mut self, name: &str, conversation: &str) -> Vec<String> {
        let messages = self
            .call(
                "messages",
                json!({"name": name, "conversationId": conversation}),
            )
            .await;
        messages
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// Asks the driver to exit and waits briefly for it (it is killed on drop otherwise).
    pub async fn stop(mut self) {
        let bye = json!({"id": self.next_id, "cmd": "exit"});
        let _ = self.stdin.write_all(format!("{bye}\n").as_bytes()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
