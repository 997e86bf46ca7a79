//! MLS building blocks on upstream openmls: the installation signer, key packages, the
//! XMTP group extensions, welcome wrapping and message contents.

pub mod content;
pub mod creator_leaf;
pub mod crypto;
pub mod discard;
pub mod dm;
pub mod group_ext;
pub mod keypackage;
pub mod provider;
pub mod signer;
#[cfg(test)]
mod test_support;
pub mod welcome;
