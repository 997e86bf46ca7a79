//! Identity-association rules of XMTP v3, as pure functions of the wire types.
//!
//! Both the node (which must reject invalid `IdentityUpdate`s like xmtp-node-go does) and
//! the client (which must verify its peers' updates before trusting their installations)
//! need exactly the same rules, so they live here next to the protos:
//! - [`inbox_id`]: inbox id derivation from an Ethereum address and a nonce;
//! - [`signature_text`]: the byte-exact text every signer of an update signs;
//! - [`verify`] / [`sign`]: ERC-191 wallet and Ed25519ph installation signatures;
//! - [`state`]: replay of an inbox's update log into its [`AssociationState`].

mod error;
mod ids;
pub mod sign;
pub mod state;
mod text;
pub mod verify;

pub use error::AssociationError;
pub use ids::{inbox_id, normalize_address, MemberId};
pub use state::{apply_update, replay, replay_all, AssociationState, MemberInfo};
pub use text::signature_text;
