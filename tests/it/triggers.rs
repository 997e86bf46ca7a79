//! Triggers over REST: validation (422 with every problem), CRUD with revisions and pause,
//! tenant isolation and chain config; the SQL `ChainStore` against the engine's contract and
//! the watcher lease are in `triggers/store.rs`.
//! No RPC is needed here: the configured chain points at a closed port, so its watcher never
//! commits anything (the anvil end-to-end tests are in `triggers_chain/`).

use herald::chain::ChainConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestApp;

mod store;

/// A chain id no other test uses, so the conformance check starts from a fresh chain.
const CHAIN: u64 = 7;
const POOL: &str = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640";
const SWAP: &str = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)";

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

fn swap_trigger() -> Value {
    json!({
        "chain_id": CHAIN,
        "address": POOL,
        "event": SWAP,
        "condition": {"arg": "amount0", "op": "<", "value": "-1000000"},
        "template": "Swap {{ args.amount0 | units(6) }} by {{ args.sender | short }} in block {{ block.number }}",
        "confirmations": 3
    })
}

#[tokio::test]
async fn invalid_triggers_get_422_listing_every_problem() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    let path = format!("/v1/channels/{ch}/triggers");

    let bad = json!({
        "chain_id": 999,
        "addresses": ["0x12", POOL],
        "event": "Transfer(address indexed from, address indexed to, uint256 value)",
        "condition": {"arg": "amount", "op": ">", "value": 1},
        "template": "{{ args.value"
    });
    let reply = app.post(&path, &key, bad).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "invalid_trigger");
    assert!(reply.body["detail"].as_str().unwrap().contains("chain_id"));
    let fields: Vec<(&str, &str)> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("chain_id", "unknown_chain"),
            ("addresses[0]", "invalid_address"),
            ("condition.arg", "unknown_argument"),
            ("template", "invalid_template"),
        ]
    );

    // A comparison of incomparable types, an unparsable event, a template failing on a sample.
    for (patch, field, code) in [
        (
            json!({"condition": {"arg": "sender", "op": ">", "value": 5}}),
            "condition",
            None,
        ),
        (json!({"event": "Swap(uint257 x)"}), "event", None),
        (
            json!({"template": "{{ args.amount0 | units('x') }}"}),
            "template",
            Some("template_render_failed"),
        ),
        (
            json!({"confirmations": 100000}),
            "confirmations",
            Some("invalid_confirmations"),
        ),
    ] {
        let mut body = swap_trigger();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = app.post(&path, &key, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}");
        let first = &reply.body["errors"][0];
        assert!(
            first["field"].as_str().unwrap().starts_with(field),
            "{patch}: {}",
            reply.body
        );
        if let Some(code) = code {
            assert_eq!(first["code"], code, "{patch}");
        }
    }

    // Shape errors (unknown fields, wrong types) are the foundation's 422 `invalid_body`.
    let mut body = swap_trigger();
    body["colour"] = json!("red");
    let reply = app.post(&path, &key, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "invalid_body");

    // Edits are validated like creation.
    let created = app.post(&path, &key, swap_trigger()).await;
    let id = created.body["id"].as_str().unwrap();
    let reply = app
        .call(
            Method::PATCH,
            &format!("{path}/{id}"),
            Some(&key),
            Some(json!({"template": "{{ args.nope | units(6) }}"})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["errors"][0]["field"], "template");
}

#[tokio::test]
async fn triggers_are_created_listed_edited_paused_and_deleted() {
    let app = app().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "swaps").await;
    let path = format!("/v1/channels/{ch}/triggers");
    let created = app.post(&path, &key, swap_trigger()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("trg_"));
    assert_eq!(created.body["revision"], 1);
    assert_eq!(created.body["paused"], false);
    assert_eq!(created.body["addresses"], json!([POOL]));
    assert_eq!(created.body["confirmations"], 3);

    let second = app.post(&path, &key, swap_trigger()).await;
    let list = app.get(&format!("{path}?limit=1"), &key).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    let next = list.body["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{path}?cursor={next}"), &key).await;
    assert_eq!(rest.body["items"][0]["id"], second.body["id"]);

    let one = format!("{path}/{id}");
    let patch = |body: Value| app.call(Method::PATCH, &one, Some(&key), Some(body));
    let edited =
        patch(json!({"template": "Swap in {{ tx.hash | short }}", "condition": null})).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["revision"], 2);
    assert_eq!(edited.body["condition"], Value::Null);
    assert_eq!(edited.body["template"], "Swap in {{ tx.hash | short }}");

    let paused = patch(json!({"paused": true})).await;
    assert_eq!(paused.body["paused"], true);
    assert_eq!(paused.body["revision"], 2, "pausing is not an edit");
    let resumed = patch(json!({"paused": false})).await;
    assert_eq!(resumed.body["paused"], false);
    assert_eq!(resumed.body["scanned_to"], Value::Null);

    let fetched = app.get(&one, &key).await;
    assert_eq!(fetched.body["revision"], 2);

    let deleted = app.call(Method::DELETE, &one, Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.get(&one, &key).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "trigger_not_found");
    let again = app.call(Method::DELETE, &one, Some(&key), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_tenants_triggers_and_channels_are_404() {
    let app = app().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let ch_a = app.channel(&a, "a").await;
    let ch_b = app.channel(&b, "b").await;
    let created = app
        .post(&format!("/v1/channels/{ch_a}/triggers"), &a, swap_trigger())
        .await;
    let id = created.body["id"].as_str().unwrap();

    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/v1/channels/{ch_a}/triggers"),
            Some(swap_trigger()),
        ),
        (Method::GET, format!("/v1/channels/{ch_a}/triggers"), None),
        (
            Method::GET,
            format!("/v1/channels/{ch_a}/triggers/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/channels/{ch_a}/triggers/{id}"),
            Some(json!({"paused": true})),
        ),
        (
            Method::DELETE,
            format!("/v1/channels/{ch_a}/triggers/{id}"),
            None,
        ),
        // B's own channel does not make A's trigger reachable.
        (
            Method::GET,
            format!("/v1/channels/{ch_b}/triggers/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/channels/{ch_b}/triggers/{id}"),
            Some(json!({"paused": true})),
        ),
        (
            Method::DELETE,
            format!("/v1/channels/{ch_b}/triggers/{id}"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let reply = app.call(method.clone(), &path, Some(&b), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
    }
    let list = app.get(&format!("/v1/channels/{ch_b}/triggers"), &b).await;
    assert_eq!(list.body["items"], json!([]));
    let still = app
        .get(&format!("/v1/channels/{ch_a}/triggers/{id}"), &a)
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["paused"], false);
}

#[tokio::test]
async fn chains_are_read_from_the_config_file_and_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(
        &file,
        r#"
[[chains]]
chain_id = 1
name = "ethereum"
rpc_urls = ["https://eth.example/v2/SECRET", "https://backup.example"]
confirmations = 20

[[chains]]
chain_id = 8453
name = "base"
rpc_urls = ["https://base.example"]
"#,
    )
    .unwrap();
    let config = herald::config::Config::load(Some(&file)).expect("config loads");
    assert_eq!(config.chains.len(), 2);
    assert_eq!(config.chains[0].confirmations, 20);
    assert_eq!(config.chains[1].confirmations, 12, "defaults fill the rest");
    assert!(
        !format!("{config:?}").contains("SECRET"),
        "RPC keys are redacted"
    );

    // A broken chain list stops startup before anything runs.
    let mut broken = herald::config::Config::defaults();
    broken.data_dir = dir.path().to_owned();
    broken.listen = "127.0.0.1:0".parse().unwrap();
    broken.chains = vec![config.chains[0].clone(), config.chains[0].clone()];
    let err = herald::app::App::build(&broken)
        .await
        .err()
        .expect("duplicate chains are refused");
    assert!(format!("{err:#}").contains("more than once"), "{err:#}");
}

#[test]
fn the_readme_trigger_example_is_valid() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("/triggers\" \\")
        .expect("README has the trigger curl example");
    let body = &readme[start..];
    let body = &body[body.find("-d '").unwrap() + 4..];
    let body = &body[..body.find("}'").unwrap() + 1];
    let spec: herald::chain::TriggerSpec = serde_json::from_str(body).expect("example parses");
    let chain = ChainConfig::new(1, "ethereum", vec!["https://eth.example".into()]);
    spec.validate(&[chain]).expect("example validates");
}
