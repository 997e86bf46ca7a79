//! Findings of the outside attacker probe (issue 20), each as a regression test: template
//! bombs, JSON strictness, control characters in text (a Postgres 500 before), garbage cursors,
//! echoed input, and error bodies written outside our handlers.

use herald::chain::ChainConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{send, Reply, TestApp, ADMIN_TOKEN};

mod inputs;
mod responses;

const CHAIN: u64 = 8;
const POOL: &str = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640";
const TRANSFER: &str = "Transfer(address indexed from, address indexed to, uint256 value)";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.chains = vec![ChainConfig::new(
            CHAIN,
            "testnet",
            vec!["http://127.0.0.1:9".into()],
        )]
    })
    .await
}

/// The probe's template: loops rebinding a string to itself doubled, `depth` deep.
fn bomb(depth: usize) -> String {
    let mut source = String::from("{% for s in ['ab'] %}");
    for _ in 0..depth {
        source.push_str("{% for s in [s ~ s] %}");
    }
    source.push_str("{{ s | length }}");
    for _ in 0..=depth {
        source.push_str("{% endfor %}");
    }
    source
}

fn trigger(template: &str) -> Value {
    json!({"chain_id": CHAIN, "address": POOL, "event": TRANSFER, "template": template})
}

/// Sends `body` as the raw bytes of a JSON request.
async fn raw_json(app: &TestApp, method: Method, path: &str, key: &str, body: &str) -> Reply {
    send(
        app.client
            .request(method, app.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}
