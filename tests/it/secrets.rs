//! Secrets never reach the logs: run the real binary with debug logging, use every secret, and
//! search its output.

use std::process::{Command, Stdio};
use std::time::Duration;

use herald::crypto::MasterKey;
use serde_json::{json, Value};

#[tokio::test]
async fn secrets_do_not_appear_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = MasterKey::generate().to_hex();
    let admin = "hadm_logcheckadmintoken00000000000000000000";
    let database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => crate::helpers::fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.path().join("h.db").display()),
    };
    // Logs go to a file, not a pipe: trace output (XMTP's gRPC included) would fill a pipe
    // nobody reads until the end and block the server.
    let log_path = dir.path().join("herald.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_DATABASE_URL", &database_url)
        .env("HERALD_DATA_DIR", dir.path())
        .env("HERALD_MASTER_KEY", &master)
        .env("HERALD_ADMIN_TOKEN", admin)
        .env("HERALD_LOG_FILTER", "trace")
        .env("HERALD_XMTP_EMBEDDED_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client.get(format!("{base}/readyz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "herald did not start");
    let tenant: Value = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(admin)
        .json(&json!({ "name": "logs" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_owned();
    let channel = client
        .post(format!("{base}/v1/channels"))
        .bearer_auth(&key)
        .json(&json!({ "name": "c" }))
        .send()
        .await
        .unwrap();
    assert!(channel.status().is_success());
    let _ = client
        .get(format!("{base}/v1/channels"))
        .bearer_auth("hk_notarealkeynotarealkeynotarealkey00000")
        .send()
        .await;

    child.kill().unwrap();
    child.wait().unwrap();
    let logs = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert!(
        logs.contains("herald listening"),
        "logs were captured: {logs}"
    );
    for secret in [key.as_str(), admin, master.as_str(), "notarealkey"] {
        assert!(!logs.contains(secret), "secret {secret} leaked into logs");
    }
}
