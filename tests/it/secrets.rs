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
        .env("HERALD_XMTP_EMBEDDED_WITH_POSTGRES", "true")
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

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A loopback JSON-RPC endpoint answering every request with block number 0x10; returns its
/// port and the request heads it saw.
async fn fake_rpc() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            heads
                .lock()
                .unwrap()
                .push(request.lines().next().unwrap_or("").to_owned());
            let body = r#"{"jsonrpc":"2.0","id":0,"result":"0x10"}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (port, seen)
}

/// One `eth_blockNumber` through the chain RPC client, logged by `subscriber`.
fn rpc_call_logs(subscriber: impl tracing::Subscriber + Send + Sync + 'static, url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config: herald::chain::ChainConfig =
        serde_json::from_value(json!({"chain_id": 1, "name": "eth", "rpc_urls": [url]})).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let rpc = herald::chain::rpc::ChainRpc::new(&config, Default::default()).unwrap();
            assert_eq!(rpc.block_number().await.unwrap(), 16);
        })
    });
}

#[test]
fn rpc_url_keys_stay_out_of_logs_at_any_level() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (port, seen) = runtime.block_on(fake_rpc());
    let secret = "k3yInThePath0123456789";
    let url = format!("http://127.0.0.1:{port}/v2/{secret}?apikey=Q{secret}");
    for directives in [
        "trace",
        "alloy_transport_http::reqwest_transport[ReqwestTransport]=trace,trace",
    ] {
        // The control: alloy's own span prints the URL when nothing caps it, so this test can see
        // a leak.
        let plain = Captured::default();
        let writer = plain.clone();
        let unguarded = tracing_subscriber::fmt()
            .with_env_filter(directives)
            .with_writer(move || writer.clone())
            .finish();
        rpc_call_logs(unguarded, &url);
        let plain = String::from_utf8_lossy(&plain.0.lock().unwrap()).into_owned();
        assert!(
            plain.contains(secret),
            "the control run logs the URL: {plain}"
        );

        let guarded = Captured::default();
        let writer = guarded.clone();
        let subscriber =
            herald::telemetry::subscriber(directives, herald::config::LogFormat::Text, move || {
                writer.clone()
            });
        rpc_call_logs(subscriber, &url);
        let logs = String::from_utf8_lossy(&guarded.0.lock().unwrap()).into_owned();
        assert!(!logs.is_empty(), "trace logs were captured");
        assert!(
            !logs.contains(secret),
            "the RPC key leaked with {directives}: {logs}"
        );
    }
    let heads = seen.lock().unwrap();
    assert!(
        heads.iter().any(|h| h.contains(secret)),
        "the calls really used the keyed URL: {heads:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_and_its_logs_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = crate::helpers::TestApp::spawn().await;
    let Some(path) = app.database_url.strip_prefix("sqlite://") else {
        return; // Postgres: no database file of ours.
    };
    app.tenant("files").await;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
}
