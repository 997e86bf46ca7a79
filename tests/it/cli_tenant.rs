//! The tenant commands against a running herald over REST: `herald announce [--wait]` and
//! `herald subscribers import`, each run as the real binary against the app's listener.

use std::process::{Output, Stdio};

use reqwest::StatusCode;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::Command;

use crate::helpers::{addresses, TestApp, CHECKSUMMED};

/// The binary with only the client's settings (no configuration, no database).
fn herald(app: &TestApp, key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_clear()
        .env("HERALD_URL", &app.base)
        .env("HERALD_API_KEY", key)
        .kill_on_drop(true);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn run(command: &mut Command) -> Output {
    command.output().await.expect("the binary runs")
}

/// Runs one statement on whichever backend the app uses (`now` is that backend's
/// current-time expression).
async fn update(app: &TestApp, sql: impl Fn(&str) -> String) -> Vec<String> {
    if app.database_url.starts_with("sqlite") {
        app.raw_strings(&sql("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"))
            .await
    } else {
        app.raw_strings(&sql("now()")).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_prints_the_id_and_wait_follows_it_to_the_end() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("cli").await;
    let channel = app.channel(&key, "cli-news").await;
    // Nobody here is on XMTP: every delivery settles `skipped: not_on_xmtp`.
    app.subscribe(&key, &channel, &addresses(0x31, 3)).await;

    let output = run(herald(&app, &key).args([
        "announce",
        "--channel",
        &channel,
        "--text",
        "Vote #7 closes tomorrow",
        "--priority",
        "critical",
        "--idempotency-key",
        "cli-vote-7",
        "--wait",
    ]))
    .await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the id alone: {stdout:?}");
    let id = lines[0];
    assert!(id.starts_with("ann_"), "{id}");
    assert!(
        stderr.contains("completed: 0 delivered, 3 skipped, 0 failed of 3"),
        "{stderr}"
    );
    let shown = app.get(&format!("/v1/announcements/{id}"), &key).await.body;
    assert_eq!(shown["status"], "completed", "{shown}");
    assert_eq!(shown["priority"], "critical", "{shown}");
    assert_eq!(shown["text"], "Vote #7 closes tomorrow", "{shown}");

    // The same idempotency key gives back the same announcement, not a second one.
    let again = run(herald(&app, &key).args([
        "announce",
        "--channel",
        &channel,
        "--text",
        "Vote #7 closes tomorrow",
        "--priority",
        "critical",
        "--idempotency-key",
        "cli-vote-7",
    ]))
    .await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout).trim(), id);
    let list = app
        .get(&format!("/v1/channels/{channel}/announcements"), &key)
        .await
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

/// `--wait` exits 4 once the announcement ends with a failed delivery. The workers are off;
/// the test settles the deliveries itself (one failed, as the pipeline's permanent failure
/// does) after the CLI printed the id, so the CLI is certainly waiting by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_wait_exits_4_when_a_delivery_failed() {
    let app = TestApp::spawn().await;
    let key = app.tenant("cli").await;
    let channel = app.channel(&key, "cli-fail").await;
    let audience = addresses(0x32, 2);
    app.subscribe(&key, &channel, &audience).await;
    let mut child = herald(&app, &key)
        .args(["announce", "--channel", &channel, "--text", "hi", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut first)
        .await
        .unwrap();
    let id = first.trim().to_owned();
    assert!(id.starts_with("ann_"), "{first:?}");
    let failed = update(&app, |now| {
        format!(
            "UPDATE deliveries SET status = CASE WHEN address = '{}' THEN 'failed' ELSE 'delivered' END, \
             reason = CASE WHEN address = '{}' THEN 'rejected' ELSE NULL END, updated_at = {now} \
             WHERE announcement_id = '{id}' RETURNING status",
            audience[0], audience[0]
        )
    })
    .await;
    assert_eq!(failed.len(), 2);
    // As settle does: the announcement's kept counts move with its deliveries.
    let done = update(&app, |now| {
        format!(
            "UPDATE announcements SET status = 'completed', delivered_count = 1, failed_count = 1, \
             updated_at = {now} WHERE id = '{id}' RETURNING id"
        )
    })
    .await;
    assert_eq!(done, vec![id.clone()]);
    let output = child.wait_with_output().await.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("completed: 1 delivered, 0 skipped, 1 failed of 2"),
        "{stderr}"
    );
    assert!(stderr.contains("1 deliveries failed"), "{stderr}");
}

#[tokio::test]
async fn api_refusals_exit_3_with_the_code_and_detail() {
    let app = TestApp::spawn().await;
    let key = app.tenant("cli").await;
    let channel = app.channel(&key, "cli-errors").await;
    let cases = [
        (
            vec![
                "announce",
                "--channel",
                &channel,
                "--text",
                "x",
                "--topic",
                "nope",
            ],
            key.as_str(),
            "error: unknown_topic: no topic nope",
        ),
        (
            vec!["announce", "--channel", "ch_missing", "--text", "x"],
            key.as_str(),
            "error: channel_not_found",
        ),
        (
            vec!["announce", "--channel", &channel, "--text", "x"],
            "hk_wrongwrongwrongwrongwrongwrongwrong",
            "error: unauthorized",
        ),
    ];
    for (args, token, said) in cases {
        let output = run(herald(&app, token).args(&args)).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.starts_with(said), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!stderr.contains(&key), "the key is never printed");
    }
    // Nothing listening: not an API refusal.
    let output = run(herald(&app, &key)
        .env("HERALD_URL", "http://127.0.0.1:1")
        .args(["announce", "--channel", &channel, "--text", "x"]))
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("could not reach herald"));
}

#[tokio::test]
async fn subscribers_import_subscribes_in_batches_and_names_each_bad_row() {
    let app = TestApp::spawn().await;
    let key = app.tenant("cli").await;
    let channel = app.channel(&key, "cli-import").await;
    let good = addresses(0x33, 25);
    let bad_checksum = CHECKSUMMED.replace("aAeb", "AAeb");
    let mut csv = String::from("name,address\n");
    for (i, address) in good.iter().enumerate() {
        csv.push_str(&format!("user{i},{address}\n"));
        match i {
            4 => csv.push_str("broken,0x1234\n"),
            11 => csv.push_str(&format!("checksum,{bad_checksum}\n")),
            17 => csv.push_str("empty,\n"),
            // A repeat is not an error: it is already subscribed.
            20 => csv.push_str(&format!("again,{}\n", good[0])),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subscribers.csv");
    std::fs::write(&file, &csv).unwrap();
    let import = || {
        let mut command = herald(&app, &key);
        command
            .args([
                "subscribers",
                "import",
                "--channel",
                &channel,
                "--batch",
                "7",
            ])
            .arg(&file);
        command
    };
    let output = run(&mut import()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(
        text(&output.stdout).trim(),
        "25 added, 1 already subscribed, 3 refused"
    );
    // Header on line 1, user0 on line 2: the bad rows follow users 4, 11 and 17.
    let refused: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(
        refused,
        vec![
            "line 7: \"0x1234\": malformed".to_owned(),
            format!("line 15: \"{bad_checksum}\": bad_checksum"),
            "line 22: \"\": no address in this row".to_owned(),
        ],
        "{stderr}"
    );
    let listed = app
        .get(
            &format!("/v1/channels/{channel}/subscribers?limit=100"),
            &key,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 25);

    // Running it again changes nothing and says so.
    let output = run(&mut import()).await;
    assert_eq!(
        text(&output.stdout).trim(),
        "0 added, 26 already subscribed, 3 refused"
    );

    // A whole-request refusal (unknown channel) is an API error, not a row report.
    let output = run(herald(&app, &key)
        .args(["subscribers", "import", "--channel", "ch_missing"])
        .arg(&file))
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
}
