//! herald: a self-hosted service that turns REST calls and on-chain events into
//! end-to-end-encrypted XMTP v3 direct-message announcements.
//!
//! Modules in reading order: `config` loads settings once; `domain` holds the rules and typed
//! values with no web or database knowledge; `crypto` holds key material handling; `store` persists
//! everything behind the [`store::Store`] trait (Postgres or SQLite); `tenants` is the service both the REST handler and the CLI call to create a tenant; `http` is the REST surface;
//! `telemetry` sets up logs and metrics; `workers` are the background loops; `app` wires them
//! together and runs them; `client` is the tenant command line's REST client for a running herald.

pub mod app;
pub mod chain;
pub mod client;
pub mod config;
pub mod crypto;
pub mod datadir;
pub mod domain;
pub mod http;
pub mod inbound;
pub mod rotate;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod webhooks;
pub mod workers;
pub mod xmtp;
