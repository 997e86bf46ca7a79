//! herald on XMTP's decentralized network (d14n): channels publish client envelopes through
//! the devnode's gateway API and read from the node it lists, and the official SDK 6.0.0,
//! configured for d14n only (`gatewayHost`; its v3 URL is a closed port), is the subscriber.
//! The same scenarios as on v3: first contact, a repeat, a herald restart between messages,
//! and a STOP reply — each message read exactly once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use xmtp_devnode::{DevNode, DevNodeConfig};

use crate::helpers::TestApp;
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

async fn announce(app: &TestApp, key: &str, channel: &str, text: &str) -> serde_json::Value {
    let r = app
        .post_announcement(key, channel, json!({ "text": text }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    wait_completed(app, key, r.body["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn herald_and_the_sdk_exchange_dms_over_d14n_across_a_restart() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let url = node.url();
    let mut app = TestApp::spawn_with(|c| {
        c.xmtp.network = url.clone();
        c.xmtp.gateway_url = Some(url.clone());
        c.xmtp.workers = 1;
    })
    .await;
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "alerts").await;
    let sender = app.inbox_of(&key, &channel).await;

    let mut sdk = Sdk::start().await;
    let (_, k) = crate::sdk::driver::random_key();
    let alice = sdk.create_d14n("alice", &k, &url, &closed_port_url()).await;
    app.subscribe(&key, &channel, &[alice.address.to_lowercase()])
        .await;

    // First contact, then a repeat in the same DM.
    let done = announce(&app, &key, &channel, "d14n one").await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    announce(&app, &key, &channel, "d14n two").await;
    let dm = sdk
        .find_dm(&alice, &sender)
        .await
        .expect("a DM from the channel");
    assert_eq!(sdk.texts(&alice, &dm).await, ["d14n one", "d14n two"]);

    // herald restarts between messages; the next one lands in the same DM, once.
    app.restart().await;
    announce(&app, &key, &channel, "d14n three").await;
    assert_eq!(
        sdk.texts(&alice, &dm).await,
        ["d14n one", "d14n two", "d14n three"]
    );

    // The subscriber replies STOP; herald (reading its inbox over d14n) answers and stops.
    sdk.say(&alice, &dm, "STOP").await;
    let start = Instant::now();
    loop {
        let texts = sdk.texts(&alice, &dm).await;
        if texts.iter().any(|t| t.contains("You're unsubscribed")) {
            let n = texts.iter().filter(|t| t.contains("unsubscribed")).count();
            assert_eq!(n, 1, "answered once: {texts:?}");
            break;
        }
        assert!(start.elapsed() < REPLY_TIMEOUT, "no STOP answer: {texts:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let done = announce(&app, &key, &channel, "d14n four").await;
    assert_eq!(done["counts"]["total"], 0, "{done}");
    let texts = sdk.texts(&alice, &dm).await;
    assert!(!texts.iter().any(|t| t == "d14n four"), "{texts:?}");
    assert_eq!(
        texts.iter().filter(|t| t.starts_with("d14n ")).count(),
        3,
        "each announcement once: {texts:?}"
    );
    sdk.shutdown().await;
    node.shutdown().await;
}

#[tokio::test]
async fn doctor_checks_a_d14n_gateway() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .env("HERALD_LOG_FILTER", "warn")
        .env("HERALD_XMTP_GATEWAY_URL", node.url())
        .args(["doctor", "--network", &node.url()])
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("d14n gateway") && out.contains("GetNodes"),
        "{out}"
    );
    // A gateway URL where nothing listens.
    let closed = closed_port_url();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .env("HERALD_XMTP_GATEWAY_URL", &closed)
        .args(["doctor", "--network", "mainnet"])
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("connection refused"), "{out}");
    node.shutdown().await;
}
