//! Native XMTP v3 client: identity, key packages, DMs and text messages that the official
//! XMTP SDK (libxmtp 1.10) reads, built on upstream `openmls`.
//!
//! Start at [`Client::open`]. Lower layers are public for tests and benchmarks:
//! [`mls`] (pure MLS operations), [`identity`], [`transport`], [`storage`].

mod client;
pub mod error;
pub mod identity;
pub mod mls;
pub mod storage;
pub mod transport;

pub use client::{Client, InboxState, OutgoingText, ReceivedMessage, SendOptions};
pub use error::ClientError;
pub use identity::Wallet;
pub use storage::{MemoryStore, RedbStore, Store};
pub use transport::{GrpcTransport, Transport, TransportError};
