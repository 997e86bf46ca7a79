//! Master-key rotation without downtime: servers run with the new key and the old one as
//! `master_key_previous` while `rotate_master` re-seals; a run stopped halfway and started
//! again leaves every secret under the new key, and every channel sends with the new key alone.

use herald::crypto::MasterKey;
use herald::rotate::rotate_master;
use herald::store::{SealedAt, Store};
use herald::xmtp::state::state_context;
use secrecy::SecretString;
use serde_json::json;
use xmtp_client::Client;
use xmtp_devnode::{DevNode, DevNodeConfig};

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use crate::helpers::TestApp;
use crate::pipeline::{herald_inbox, received, wait_completed};
use crate::sdk::Sdk;

/// Sends `text` on every channel and waits until each is delivered.
async fn announce_everywhere(app: &TestApp, key: &str, channels: &[String], text: &str) {
    for ch in channels {
        let r = app
            .post_announcement(key, ch, json!({ "text": text }))
            .await;
        assert_eq!(r.status, reqwest::StatusCode::ACCEPTED, "{}", r.body);
        let done = wait_completed(app, key, r.body["id"].as_str().unwrap()).await;
        assert_eq!(done["counts"]["delivered"], 1, "{done}");
    }
}

/// Every sealed value, with the context it is sealed with.
async fn all_sealed(store: &dyn Store) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = store
        .sealed_wallets("", 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| match s.at {
            SealedAt::Wallet { channel } => (channel, s.value),
            SealedAt::State { .. } | SealedAt::Webhook { .. } => unreachable!(),
        })
        .collect();
    for s in store.sealed_states(("", &[]), 10_000).await.unwrap() {
        let SealedAt::State { channel, key } = &s.at else {
            unreachable!()
        };
        out.push((state_context(channel, key), s.value));
    }
    for s in store.sealed_webhooks("", 10_000).await.unwrap() {
        let SealedAt::Webhook { endpoint, .. } = &s.at else {
            unreachable!()
        };
        out.push((endpoint.clone(), s.value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_stopped_halfway_and_resumed_leaves_every_channel_able_to_send() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let url = node.url();
    let mut app = TestApp::spawn_with(|c| {
        c.xmtp.network = url.clone();
        c.xmtp.workers = 1;
        c.webhooks.allow_private = vec!["127.0.0.1/32".into()];
    })
    .await;
    let key = app.tenant("acme").await;
    // A webhook endpoint whose secret was rotated: two sealed secrets.
    let hook = app
        .post(
            "/v1/webhooks",
            &key,
            serde_json::json!({"url": "http://127.0.0.1:9/h"}),
        )
        .await;
    let hook = hook.body["id"]
        .as_str()
        .expect("webhook created")
        .to_owned();
    let rotated = app
        .post(
            &format!("/v1/webhooks/{hook}/rotate-secret"),
            &key,
            serde_json::json!({}),
        )
        .await;
    assert!(rotated.status.is_success(), "{}", rotated.body);
    let mut channels = Vec::new();
    let mut readers: Vec<Client> = Vec::new();
    for i in 0..3 {
        let ch = app.channel(&key, &format!("ch{i}")).await;
        let reader = herald_inbox(&url).await;
        app.subscribe(&key, &ch, &[reader.address().to_owned()])
            .await;
        channels.push(ch);
        readers.push(reader);
    }
    announce_everywhere(&app, &key, &channels, "before").await;

    let old = app.kek.clone();
    let new = MasterKey::generate();
    let sealed = all_sealed(app.store.as_ref()).await;
    assert!(sealed.len() > channels.len(), "wallets and client state");
    assert_eq!(sealed.iter().filter(|(ctx, _)| *ctx == hook).count(), 2);
    assert!(sealed.iter().all(|(ctx, v)| old.opens_with_current(v, ctx)));

    // Servers switch first: the new key seals, the old one still opens.
    let (new_hex, old_hex) = (new.to_hex(), old.to_hex());
    app.restart_with(|c| {
        c.master_key = Some(SecretString::from(new_hex.clone()));
        c.master_key_previous = Some(SecretString::from(old_hex.clone()));
    })
    .await;
    let half = rotate_master(app.store.as_ref(), &old, &new, 2, Some(2))
        .await
        .unwrap();
    assert!(!half.finished && half.resealed > 0, "{half:?}");
    announce_everywhere(&app, &key, &channels, "during").await;
    let rest = rotate_master(app.store.as_ref(), &old, &new, 2, None)
        .await
        .unwrap();
    assert!(rest.finished, "{rest:?}");
    assert!(
        rest.already >= half.resealed,
        "resumed past the first run's work: {rest:?}"
    );
    let sealed = all_sealed(app.store.as_ref()).await;
    assert!(
        sealed.iter().all(|(ctx, v)| new.opens_with_current(v, ctx)),
        "every secret under the new key"
    );

    // The old key is gone: every channel still sends, and each reader got all three texts.
    app.restart_with(|c| c.master_key_previous = None).await;
    announce_everywhere(&app, &key, &channels, "after").await;
    for reader in &readers {
        let mut texts = Vec::new();
        for ch in &channels {
            let r = app.get(&format!("/v1/channels/{ch}"), &key).await;
            let inbox = r.body["xmtp"]["inbox_id"].as_str().unwrap().to_owned();
            texts.extend(received(reader, &inbox).await.into_iter().map(|(t, _)| t));
        }
        assert_eq!(texts, ["before", "during", "after"]);
    }
    node.shutdown().await;
}

/// `herald keys rotate-master` with the test app's database and the servers' keys.
fn rotate_command(
    app: &TestApp,
    new: &MasterKey,
    old: &MasterKey,
    file: &std::path::Path,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_clear()
        .env("HERALD_DATABASE_URL", &app.database_url)
        .env("HERALD_MASTER_KEY", new.to_hex())
        .env("HERALD_MASTER_KEY_PREVIOUS", old.to_hex())
        .env("HERALD_LOG_FILTER", "warn")
        .args(["keys", "rotate-master", "--new-key-file"])
        .arg(file)
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_master_process_killed_halfway_and_run_again_leaves_every_channel_sending() {
    let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let url = node.url();
    let mut app = TestApp::spawn_with(|c| {
        c.xmtp.network = url.clone();
        c.xmtp.workers = 1;
    })
    .await;
    let key = app.tenant("acme").await;
    let mut sdk = Sdk::start().await;
    let alice = sdk.user("alice", &url).await;
    let mut channels = Vec::new();
    for i in 0..3 {
        let ch = app.channel(&key, &format!("ch{i}")).await;
        app.subscribe(&key, &ch, std::slice::from_ref(&alice.address))
            .await;
        channels.push(ch);
    }
    announce_everywhere(&app, &key, &channels, "before").await;

    let old = app.kek.clone();
    let new = MasterKey::generate();
    let (new_hex, old_hex) = (new.to_hex(), old.to_hex());
    app.restart_with(|c| {
        c.master_key = Some(SecretString::from(new_hex.clone()));
        c.master_key_previous = Some(SecretString::from(old_hex.clone()));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.key");
    std::fs::write(&file, new.to_hex()).unwrap();

    // One value per batch and a pause after each: the first progress line means one batch
    // is done and the next has not started; SIGKILL lands there.
    let mut child = rotate_command(&app, &new, &old, &file)
        .args(["--batch", "1", "--pause-ms", "5000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the run prints progress before it ends");
        if line.starts_with("progress:") {
            break line;
        }
    };
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed: {status:?} after {first}");
    assert!(first.contains("1 re-sealed"), "{first}");
    let sealed = all_sealed(app.store.as_ref()).await;
    let under_new = sealed
        .iter()
        .filter(|(ctx, v)| new.opens_with_current(v, ctx))
        .count();
    assert!(
        under_new >= 1 && under_new < sealed.len(),
        "stopped halfway: {under_new} of {} under the new key",
        sealed.len()
    );
    // Servers keep sending meanwhile.
    announce_everywhere(&app, &key, &channels, "during").await;

    let output = rotate_command(&app, &new, &old, &file)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("re-sealed"), "{stderr}");
    assert!(!stderr.contains(&new_hex) && !stderr.contains(&old_hex));
    let sealed = all_sealed(app.store.as_ref()).await;
    assert!(
        sealed.iter().all(|(ctx, v)| new.opens_with_current(v, ctx)),
        "every secret under the new key"
    );

    // The new key alone: every channel sends, and the SDK reads all three in each DM.
    app.restart_with(|c| c.master_key_previous = None).await;
    announce_everywhere(&app, &key, &channels, "after").await;
    for ch in &channels {
        let r = app.get(&format!("/v1/channels/{ch}"), &key).await;
        let inbox = r.body["xmtp"]["inbox_id"].as_str().unwrap().to_owned();
        let dm = sdk.find_dm(&alice, &inbox).await.expect("DM listed");
        assert_eq!(
            sdk.texts(&alice, &dm).await,
            ["before", "during", "after"],
            "{ch}"
        );
    }
    sdk.shutdown().await;
    node.shutdown().await;
}
