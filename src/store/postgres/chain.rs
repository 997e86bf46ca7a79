//! Postgres: trigger CRUD and chain watcher leases (SQL shared with the other backend, see
//! `store/chain_sql.rs`); the engine's [`ChainStore`] is in `chain_batch.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::postgres::PgPool;

use super::chain_batch::PgChainStore;
use super::PgStore;
use crate::chain::store::ChainStore;
use crate::domain::{ChannelId, TenantId, TriggerId};
use crate::store::chain::{expiry, long_ago, TriggerRow, TRIGGER_COLUMNS};
use crate::store::chain_sql::impl_triggers;
use crate::store::*;

impl_triggers!(PgStore, PgPool, PgChainStore);
