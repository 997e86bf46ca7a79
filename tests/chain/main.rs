//! Chain trigger engine tests against a real anvil node (spawned per test on `--port 0`).
//!
//! anvil comes from npm: run `scripts/setup-anvil.sh` once (or set `ANVIL_BIN`).

mod harness;
mod proxy;

mod announce;
mod backfill;
mod events;
mod faults;
mod lifecycle;
mod reorg;
mod restart;
