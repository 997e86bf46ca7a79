//! Starting `herald serve` safely: the data folder is locked and both listeners bound before
//! any secret is generated or printed; a port clash or a placeholder secret stops it with one
//! clear message; a generated admin token is printed once, framed, after the listener is up;
//! `herald admin reset-token` replaces it; the admin lists tenants.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::crash::Serve;
use crate::helpers::*;

/// A database URL for a subprocess: a fresh Postgres database when `TEST_DATABASE_URL` is
/// set, else SQLite inside `dir`.
async fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
        _ => format!("sqlite://{}", dir.join("h.db").display()),
    }
}

/// `herald serve` with the given environment only; returns (success, stdout, stderr).
fn serve_once(env: &[(&str, String)]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("serve")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_second_serve_on_the_same_data_folder_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::new(
        database_url(dir.path()).await,
        dir.path(),
        "embedded".into(),
    );
    let log = dir.path().join("first.log");
    let mut first = serve.spawn(&log);
    wait_listening(&serve, &mut first, &log).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env: Vec<(&str, String)> = serve
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    env.retain(|(k, _)| *k != "HERALD_LISTEN");
    env.push(("HERALD_LISTEN", format!("127.0.0.1:{port}")));
    let (ok, _, stderr) = serve_once(&env);
    assert!(!ok, "a second server on one data folder must not start");
    assert!(
        stderr.contains("already serving from the data folder")
            && stderr.contains("HERALD_DATA_DIR"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "one message: {stderr}");
}

#[tokio::test]
async fn a_port_clash_names_the_port_and_its_setting_and_creates_no_secret() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [
        ("HERALD_LISTEN", format!("127.0.0.1:{port}")),
        ("HERALD_DATA_DIR", data.display().to_string()),
        ("HERALD_XMTP_EMBEDDED_LISTEN", "127.0.0.1:0".to_owned()),
    ];
    let (ok, stdout, stderr) = serve_once(&env);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("port {port} is already in use"))
            && stderr.contains("HERALD_LISTEN"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("hadm_") && !stderr.contains("hadm_"),
        "no admin token is generated before the port is known to be free"
    );
    assert!(
        !data.join(herald::app::MASTER_KEY_FILE).exists(),
        "no master key is generated before the port is known to be free"
    );

    // The embedded XMTP node's port likewise.
    let env = [
        ("HERALD_LISTEN", "127.0.0.1:0".to_owned()),
        ("HERALD_DATA_DIR", data.display().to_string()),
        ("HERALD_XMTP_EMBEDDED_LISTEN", format!("127.0.0.1:{port}")),
    ];
    let (ok, _, stderr) = serve_once(&env);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("port {port} is already in use"))
            && stderr.contains("HERALD_XMTP_EMBEDDED_LISTEN"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("already in use").count(),
        1,
        "the cause is said once: {stderr}"
    );
    assert!(!data.join(herald::app::MASTER_KEY_FILE).exists());
}

#[test]
fn placeholder_secrets_from_the_example_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for (name, value) in [
        ("HERALD_MASTER_KEY", "CHANGE-ME-64-HEX-CHARACTERS"),
        ("HERALD_ADMIN_TOKEN", "CHANGE-ME"),
        (
            "HERALD_DATABASE_URL",
            "postgres://herald:CHANGE-ME@postgres:5432/herald",
        ),
    ] {
        let env = [
            ("HERALD_DATA_DIR", data.clone()),
            ("HERALD_LISTEN", "127.0.0.1:0".to_owned()),
            (name, value.to_owned()),
        ];
        let (ok, _, stderr) = serve_once(&env);
        assert!(!ok, "{name}={value} must be refused");
        assert!(
            stderr.contains(name) && stderr.contains("placeholder"),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_generated_admin_token_is_printed_once_framed_after_listening_and_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::new(
        database_url(dir.path()).await,
        dir.path(),
        "embedded".into(),
    );
    let env: Vec<(String, String)> = serve
        .env
        .iter()
        .filter(|(k, _)| k != "HERALD_ADMIN_TOKEN")
        .cloned()
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .envs(env.iter().cloned())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Read stderr up to the token (the frame's line starting with it), then keep draining it
    // so the server never writes into a closed pipe.
    let (found, token_line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut before = Vec::new();
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix("hadm_") {
                if let Some(found) = found.take() {
                    let _ = found.send((format!("hadm_{rest}"), std::mem::take(&mut before)));
                }
            } else if found.is_some() {
                before.push(line);
            }
        }
    });
    let (token, before): (String, Vec<String>) = tokio::task::spawn_blocking(move || {
        token_line
            .recv()
            .expect("herald exited without printing a token")
    })
    .await
    .unwrap();
    assert!(
        before.iter().any(|l| l.contains("herald listening")),
        "the token comes after the listener is up: {before:?}"
    );
    assert!(
        before.iter().any(|l| l.starts_with("=====")),
        "the token is framed: {before:?}"
    );
    let http = reqwest::Client::new();
    let listed = send(
        http.get(format!("{}/v1/tenants", serve.base))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let _ = child.kill();
    let _ = child.wait();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(!stdout.contains(&token), "printed once, on stderr only");

    // `herald admin reset-token` issues a new one; after a restart only the new one works.
    let reset = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .envs(env.iter().cloned())
        .args(["admin", "reset-token"])
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let new = String::from_utf8(reset.stdout).unwrap().trim().to_owned();
    assert!(new.starts_with("hadm_") && new != token, "{new}");
    let log = dir.path().join("again.log");
    let restarted = Serve {
        env: env.clone(),
        base: serve.base.clone(),
    };
    let mut again = restarted.spawn(&log);
    wait_listening(&restarted, &mut again, &log).await;
    // A new client: the old one's kept-alive connection went down with the first process.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/tenants", serve.base);
    assert_eq!(
        send(http.get(&url).bearer_auth(&new)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(http.get(&url).bearer_auth(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A token set in the configuration is not reset from the command line.
    let refused = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .envs(env.iter().cloned())
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .args(["admin", "reset-token"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let refused = String::from_utf8_lossy(&refused.stderr);
    assert!(refused.contains("HERALD_ADMIN_TOKEN"), "{refused}");
}

/// Waits until `serve` answers, failing with its log as soon as the process exits.
async fn wait_listening(serve: &Serve, running: &mut crate::crash::Running, log: &std::path::Path) {
    let http = reqwest::Client::new();
    loop {
        if http
            .get(format!("{}/healthz", serve.base))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            running.alive(),
            "herald exited: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_admin_lists_tenants_oldest_first_in_pages() {
    let app = TestApp::spawn().await;
    let key = app.tenant("first").await;
    app.channel(&key, "news").await;
    app.tenant("second").await;
    app.tenant("third").await;

    let page = app.get("/v1/tenants?limit=2", ADMIN_TOKEN).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let items = page.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(items[0]["channels"], json!(1));
    assert_eq!(items[0]["active_keys"], json!(1));
    assert!(items[0].get("api_key").is_none(), "keys are never listed");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/v1/tenants?limit=2&cursor={cursor}"), ADMIN_TOKEN)
        .await;
    assert_eq!(rest.body["items"][0]["name"], "third");
    assert!(rest.body["next_cursor"].is_null());

    assert_eq!(
        app.get("/v1/tenants", &key).await.status,
        StatusCode::UNAUTHORIZED,
        "a tenant key is not the admin token"
    );
    assert_eq!(
        app.get("/v1/tenants?cursor=nope", ADMIN_TOKEN).await.status,
        StatusCode::BAD_REQUEST
    );
}
