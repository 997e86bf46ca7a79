//! Inbound chat: subscribers manage their subscription by messaging the channel's XMTP inbox.
//!
//! [`commands`] parses what they type, [`handler`] applies it (subscription change + consent
//! log) and words the reply, and [`step`] is the worker step that, given the channel's XMTP
//! client, joins new DMs, reads new messages, maps each sender's inbox to its verified wallet
//! address, and answers. Send workers honour opt-outs through
//! [`SelfServiceStore::is_deliverable`](crate::store::SelfServiceStore::is_deliverable).

pub mod commands;
pub mod handler;
pub mod step;

pub use commands::Command;
pub use handler::{handle_incoming, Incoming};
pub use step::{run, run_once, watch_recipients, InboundError, InboundOutcome};
