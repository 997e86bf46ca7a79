//! Native XMTP v3 client: identity, key packages, DMs and text messages that the official
//! XMTP SDK (libxmtp 1.10, `@xmtp/node-sdk` 6.0.0) reads, built on upstream `openmls` 0.9.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xmtp_client::ClientError> {
//! use std::sync::Arc;
//! use xmtp_client::{Client, GrpcTransport, OutgoingText, RedbStore, Wallet};
//!
//! let wallet = Wallet::from_bytes(&[7u8; 32]).expect("valid secp256k1 key");
//! let transport = Arc::new(GrpcTransport::connect_lazy("http://127.0.0.1:5556")?);
//! let store = Arc::new(RedbStore::open("herald-xmtp.redb")?);
//! // Registers an installation on first use (creating or joining the wallet's inbox),
//! // reloads it from `store` afterwards.
//! let client = Client::open(&wallet, transport, store).await?;
//!
//! let peers = client.resolve_inbox_ids(&["0x1234567890abcdef1234567890abcdef12345678".into()]).await?;
//! if let Some(Some(inbox)) = peers.into_values().next() {
//!     // The idempotency key makes a resend show once to the receiver.
//!     client.send_batch(vec![OutgoingText {
//!         peer_inbox_id: inbox.clone(),
//!         content: "Block 19000001: 5 ETH received".into(),
//!         idempotency_key: "delivery-42".into(),
//!     }]).await?;
//!     let replies = client.sync_dm(&inbox).await?;
//!     println!("{} replies", replies.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Layers, top down: [`Client`] (network + persistence orchestration), [`mls`] (pure MLS on
//! openmls: key packages, XMTP extensions, welcome wrapping, contents), [`identity`] (wallet,
//! inbox id, signed identity updates), [`transport`] (the node API as a trait + tonic),
//! [`storage`] (key/value [`Store`] + openmls storage cache; documents the crash-safe order).

mod client;
pub mod error;
pub mod identity;
pub mod mls;
pub mod sender_tag;
pub mod storage;
pub mod transport;

pub use client::{Client, InboxState, OutgoingText, ReceivedMessage, SealedBatch, SendOptions};
pub use error::ClientError;
pub use identity::Wallet;
pub use mls::content::{Content, ReplyTarget, TransactionMetadata, TransactionReference};
pub use storage::{MemoryStore, RedbStore, Store};
pub use transport::{
    ConnectProblem, D14nTransport, GatewayAuth, GroupArrival, GroupStream, GrpcTransport,
    Subscriptions, TlsOptions, TopicStream, Transport, TransportError,
};
