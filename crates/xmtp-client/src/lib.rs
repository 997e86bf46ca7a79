//! Native XMTP v3 client: identity, key packages, DMs and text messages that the official
//! XMTP SDK (libxmtp 1.10) reads, built on upstream `openmls`.

pub mod identity;
pub mod mls;
pub mod storage;
pub mod transport;
