//! End to end against anvil: a trigger created over REST, a Swap emitted on chain, and the
//! watcher inside `herald serve` turning it into exactly one announcement with delivery rows,
//! only after the trigger's confirmations; and two replicas sharing one database, of which
//! only the lease holder commits.
//!
//! Waits poll the observable state with generous deadlines; no sleep stands in for an assertion.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::chain_harness::{Chain, SWAP};
use crate::helpers::{addresses, TestApp, ADMIN_TOKEN};
use herald::app::App;
use herald::config::{Config, DatabaseUrl};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

mod announce;
mod replicas;

/// Deadline for anything the watcher must do (a loaded 2-core machine is slow).
const DEADLINE: Duration = Duration::from_secs(90);

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn trigger(chain: &Chain, confirmations: u64) -> Value {
    json!({
        "chain_id": crate::chain_harness::CHAIN_ID,
        "address": chain.contract.to_string(),
        "event": SWAP,
        "condition": {"arg": "amount0", "op": ">=", "value": "1000000000000000000"},
        "template": "Swap {{ args.amount0 | units(18) }} / {{ args.amount1 }} at block {{ block.number }} on {{ chain.name }}",
        "confirmations": confirmations
    })
}

/// Texts of the channel's announcements, oldest first.
/// Creates `body` as a trigger of channel `ch` (201 asserted); returns the trigger's path.
async fn create_trigger(app: &TestApp, key: &str, ch: &str, body: Value) -> String {
    let created = app
        .post(&format!("/v1/channels/{ch}/triggers"), key, body)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    format!(
        "/v1/channels/{ch}/triggers/{}",
        created.body["id"].as_str().unwrap()
    )
}

async fn announcements(app: &TestApp, channel: &str) -> Vec<String> {
    app.raw_strings(&format!(
        "SELECT text FROM announcements WHERE channel_id = '{channel}' ORDER BY id"
    ))
    .await
}

/// Waits until the chain's watcher has committed its starting cursor: a trigger created after
/// that starts at the block after the cursor, so every later swap is in its range.
async fn watcher_started(app: &TestApp) {
    eventually("the watcher's first cursor", || async {
        let rows = app
            .raw_strings("SELECT CAST(block_number AS TEXT) FROM chain_cursors")
            .await;
        (!rows.is_empty()).then_some(())
    })
    .await
}

/// Waits until the watcher has scanned the trigger up to `block`.
async fn scanned(app: &TestApp, key: &str, trigger_path: &str, block: u64) {
    eventually(&format!("scan to block {block}"), || async {
        let t = app.get(trigger_path, key).await;
        t.body["scanned_to"]
            .as_u64()
            .filter(|s| *s >= block)
            .map(|_| ())
    })
    .await
}
