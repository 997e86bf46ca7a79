//! Inbound chat: subscribers manage their subscription by messaging the channel's XMTP inbox.
//!
//! [`commands`] parses what they type, [`handler`] applies it (subscription change + consent
//! log) and words the reply, and [`step`] is the worker step that, given the channel's XMTP
//! client, joins new DMs, reads new messages, maps each sender's inbox to its verified wallet
//! address, and answers. `herald serve` runs the step inside the delivery workers, under the
//! channel's sender lease and with the drain's client (`workers::delivery`), triggered by
//! the node's streams (`workers::inbound_watch`). [`limit`] caps commands per sender inbox so
//! a flood of DMs cannot starve the channel's sending. Send workers honour opt-outs at send time
//! through [`TopicStore::topic_receivers`](crate::store::TopicStore::topic_receivers).

pub mod commands;
pub mod handler;
pub mod limit;
pub mod step;

pub use commands::Command;
pub use handler::{handle_incoming, Incoming};
pub use limit::ChatLimiter;
pub use step::{run_once, run_pass, watch_recipients, InboundError, InboundOutcome};
