//! The official `@xmtp/node-sdk` as a test peer. The driver handle is the interop tests' own
//! (`crates/xmtp-client/tests/interop/sdk.rs`, included here); this module adds what herald's
//! self-service tests do as subscribers: open DMs and chat. Fails, never skips, when the SDK is
//! not installed (`make test-deps`).

use serde_json::json;

#[path = "../../crates/xmtp-client/tests/interop/sdk.rs"]
#[allow(dead_code)] // Not every helper of the shared driver is used here.
pub mod driver;

pub use driver::{Sdk, SdkClient as SdkUser};

impl Sdk {
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

    /// Sends `text` from `user` into the DM `dm`; returns the message id the SDK reports.
    pub async fn say(&mut self, user: &SdkUser, dm: &str, text: &str) -> String {
        let id = self
            .call(
                "reply",
                json!({"name": user.name, "conversationId": dm, "text": text}),
            )
            .await;
        id.as_str()
            .expect("sendText returns the message id")
            .to_owned()
    }

    /// Texts the client `name` reads in its DM with `peer_inbox_id`, after a sync (None: no
    /// such DM).
    pub async fn dm_texts(&mut self, name: &str, peer_inbox_id: &str) -> Option<Vec<String>> {
        let conv = self.find_dm_of(name, peer_inbox_id).await?;
        Some(self.texts_of(name, &conv).await)
    }
}
