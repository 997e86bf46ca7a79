//! herald's integration tests: one binary, each test against a real app on a loopback port.
//! SQLite by default; set `TEST_DATABASE_URL` (or use `make test`) to run them on Postgres.
//! The trigger tests (`triggers_chain`, `triggers_reorg`, one of `webhooks`) spawn anvil:
//! `scripts/setup-anvil.sh` installs it (the Makefile test targets run it), or set `ANVIL_BIN`.

mod announcements;
mod browser;
mod budget;
mod channel_state;
mod channels;
mod chat_limits;
mod claim_rank;
mod cli;
mod cli_tenant;
mod config_errors;
mod connections;
mod counts;
mod crash;
mod d14n;
mod dashboards;
mod deploy;
mod docs;
mod events;
mod hardening;
mod helpers;
mod idempotency;
mod installation_rotation;
mod isolation;
mod kept_clients;
mod limits;
mod operations;
mod operator_api;
mod outage;
mod pacing;
mod pages;
mod pipeline;
mod progress;
mod quotas;
mod retraction;
mod rich_content;
mod rotation;
mod schedule;
mod sdk;
mod secrets;
mod selfservice;
mod selfservice_chat;
mod selfservice_schedule;
mod selfservice_serve;
mod shutdown;
mod siwe;
mod startup;
mod store_story;
mod subscribers;
mod tenants;
mod tls;
mod triggers;
mod triggers_chain;
mod triggers_reorg;
mod watches;
mod watches_store;
mod webhooks;

/// The chain engine's anvil harness (deploy, emit, mine), shared with `tests/chain`.
#[path = "../chain/harness.rs"]
#[allow(dead_code)]
mod chain_harness;
