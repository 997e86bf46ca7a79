//! herald's integration tests: one binary, each test against a real app on a loopback port.
//! SQLite by default; set `TEST_DATABASE_URL` (or use `make test`) to run them on Postgres.

mod announcements;
mod channels;
mod cli;
mod crash;
mod helpers;
mod idempotency;
mod isolation;
mod limits;
mod operations;
mod pacing;
mod pipeline;
mod sdk;
mod secrets;
mod store_story;
mod subscribers;
mod tenants;
