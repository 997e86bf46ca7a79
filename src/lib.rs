//! herald library: service modules.

pub mod chain;
