//! The `herald` binary: `tenant create`, `migrate`, `openapi`, `keys rotate-master`.

use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::TestApp;

fn herald(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_clear()
        .env("HERALD_DATABASE_URL", &app.database_url)
        .env("HERALD_MASTER_KEY", app.kek.to_hex())
        .env("HERALD_LOG_FILTER", "warn");
    command
}

#[tokio::test]
async fn tenant_create_prints_only_the_key_and_the_key_works() {
    let app = TestApp::spawn().await;
    let output = herald(&app)
        .args(["tenant", "create", "Acme DAO"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is exactly the key: {stdout:?}");
    let key = lines[0];
    assert!(
        key.starts_with("hk_")
            && key.len() >= 35
            && key[3..].bytes().all(|b| b.is_ascii_alphanumeric())
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(key),
        "the key is printed once"
    );
    assert_eq!(app.get("/v1/channels", key).await.status, StatusCode::OK);
}

#[tokio::test]
async fn migrate_and_openapi_commands_succeed() {
    let app = TestApp::spawn().await;
    let migrate = herald(&app).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(
        String::from_utf8_lossy(&migrate.stderr).contains("schema version"),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    // A new database says what it applied, not "up to date".
    let fresh = tempfile::tempdir().unwrap();
    let fresh_db = format!("sqlite://{}", fresh.path().join("new.db").display());
    let created = herald(&app)
        .env("HERALD_DATABASE_URL", &fresh_db)
        .env("HERALD_DATA_DIR", fresh.path())
        .arg("migrate")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&created.stderr);
    assert!(created.status.success(), "{said}");
    assert!(said.contains("database migrated:"), "{said}");
    let spec = herald(&app).arg("openapi").output().unwrap();
    assert!(String::from_utf8(spec.stdout)
        .unwrap()
        .starts_with("openapi: 3.1"));
    let bad = herald(&app)
        .env("HERALD_DATABASE_URL", "mysql://x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn postgres_without_a_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .env("HERALD_DATABASE_URL", "postgres://127.0.0.1:1/nothing")
        .env("HERALD_DATA_DIR", dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("HERALD_MASTER_KEY"));
}

#[tokio::test]
async fn tenant_key_create_and_revoke_rotate_a_key() {
    let app = TestApp::spawn().await;
    let old = app.tenant("acme").await;
    let tenant = app.raw_strings("SELECT id FROM tenants").await.remove(0);
    let output = herald(&app)
        .args(["tenant", "key", "create", &tenant, "--name", "cli"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let new = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(new.starts_with("hk_") && !stderr.contains(&new), "{new}");
    assert_eq!(app.get("/v1/channels", &new).await.status, StatusCode::OK);

    let old_id = app.get("/v1/keys", &new).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = herald(&app)
        .args(["tenant", "key", "revoke", &tenant, &old_id])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // This process never cached the old key, so it is refused at once.
    assert_eq!(
        app.get("/v1/channels", &old).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = herald(&app)
        .args(["tenant", "key", "revoke", &tenant, &old_id])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a revoked key cannot be revoked again"
    );
}

#[tokio::test]
async fn keys_rotate_master_reseals_every_wallet_under_the_new_key() {
    let app = TestApp::spawn().await;
    let key = app.tenant("acme").await;
    let ch = app.channel(&key, "alerts").await;
    let new = herald::crypto::MasterKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.key");
    std::fs::write(&file, new.to_hex()).unwrap();
    let output = herald(&app)
        .args(["keys", "rotate-master", "--new-key-file"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("re-sealed"), "{stderr}");
    assert!(!stderr.contains(&new.to_hex()) && !stderr.contains(&app.kek.to_hex()));
    let id = herald::domain::ChannelId::from_trusted(ch.clone());
    let secret = app.store.pipeline().channel_secret(&id).await.unwrap();
    let sealed = secret.unwrap().wallet_key_sealed;
    assert!(new.opens_with_current(&sealed, &ch));
    assert!(
        app.kek.open(&sealed, &ch).is_err(),
        "no longer under the old key"
    );

    // A wrong new-key file is refused before anything is touched.
    std::fs::write(&file, "not a key").unwrap();
    let bad = herald(&app)
        .args(["keys", "rotate-master", "--new-key-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// `herald inbox`: the first run registers the wallet's installation, a later run prints the
/// announcement it received, the next one only "no new messages", and `--all` prints the
/// announcement again from the inbox's state file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_prints_new_messages_once_and_all_of_them_with_all() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("inbox").await;
    let channel = app.channel(&key, "inbox-news").await;
    let secret: [u8; 32] = rand::random();
    let secret_hex = hex::encode(secret);
    let address = xmtp_client::Wallet::from_bytes(&secret).unwrap().address();
    let data = tempfile::tempdir().unwrap();
    let inbox = |all: bool| {
        let mut command = herald(&app);
        command
            .env("HERALD_DATA_DIR", data.path())
            .env("HERALD_INBOX_KEY", &secret_hex)
            .args(["inbox", "--network", &app.xmtp_url]);
        if all {
            command.arg("--all");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // Registers the installation; nothing has been sent yet.
    let first = inbox(false);
    assert!(first.contains("no new messages"), "{first}");

    app.subscribe(&key, &channel, std::slice::from_ref(&address))
        .await;
    let r = app
        .post(
            &format!("/v1/channels/{channel}/announcements"),
            &key,
            serde_json::json!({ "text": "hello from herald inbox" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let done = crate::pipeline::wait_completed(&app, &key, &id).await;
    assert_eq!(done["counts"]["delivered"], serde_json::json!(1), "{done}");

    let second = inbox(false);
    assert_eq!(
        second.matches("hello from herald inbox").count(),
        1,
        "{second}"
    );
    let third = inbox(false);
    assert!(!third.contains("hello from herald inbox"), "{third}");
    assert!(third.contains("no new messages"), "{third}");
    let all = inbox(true);
    assert_eq!(all.matches("hello from herald inbox").count(), 1, "{all}");
}
