//! MLS building blocks on upstream openmls: the installation signer, key packages, the
//! XMTP group extensions, welcome wrapping and message contents.

pub mod signer;
