//! On-chain event triggers.
