//! The browser pages in headless Chromium (Debian's `chromium`, driven by npm `puppeteer-core`
//! from `interop/browser-pages.mjs`): the subscribe page with an injected EIP-1193 wallet, and
//! the console. Each run also checks that no request left herald's origin and that no console
//! error was logged, and takes the screenshots linked from the README
//! (`docs/screenshots/*.png`, rewritten with `HERALD_UPDATE_SCREENSHOTS=1`). Fails, never skips, without Chromium or the npm packages
//! (`make test-deps`).

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::pipeline::wait_completed;
use crate::sdk::driver::{interop_dir, require_sdk};
use crate::sdk::Sdk;

/// Where a screenshot goes: target/screenshots on every run, docs/screenshots (the committed
/// ones the README shows) when `HERALD_UPDATE_SCREENSHOTS=1`, so a test run leaves the checkout
/// clean (the pictures hold fresh ids and times each run).
fn screenshot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = if std::env::var("HERALD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir.join(name)
}

/// `interop/browser-pages.mjs <mode>` running: its stdout lines, and stdin for handshakes.
struct Pages {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Pages {
    async fn start(mode: &str, env: &[(&str, String)]) -> Pages {
        require_sdk();
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromium).exists(),
            "{chromium} is missing: install Debian's chromium (`make test-deps`)"
        );
        assert!(
            interop_dir().join("node_modules/puppeteer-core").exists(),
            "puppeteer-core is missing: run interop/setup.sh (`make test-deps`)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("browser-pages.mjs")
            .arg(mode)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Pages { child, lines }
    }

    /// The script's next stdout line as JSON; a failure report fails the test.
    async fn next(&mut self) -> Value {
        let line = self
            .lines
            .next_line()
            .await
            .expect("reading the browser script")
            .expect("the browser script ended without a result");
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("browser script printed {line:?}: {e}"));
        assert_ne!(value["ok"], false, "browser script failed: {value:#}");
        value
    }

    async fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The final result: fails the test if a request left herald's origin or the console
    /// logged an error.
    async fn finish(mut self) -> Value {
        let result = self.next().await;
        assert_eq!(result["ok"], true, "browser script failed: {result:#}");
        assert_eq!(
            result["offsite"],
            json!([]),
            "requests left herald's origin: {result:#}"
        );
        assert_eq!(
            result["consoleErrors"],
            json!([]),
            "console errors: {result:#}"
        );
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "browser script exit: {status}");
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_page_subscribes_a_wallet_whose_sdk_client_reads_the_announcement() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("pages").await;
    let channel = app.channel(&key, "Protocol alerts").await;
    app.topic(
        &key,
        &channel,
        json!({"name": "security", "description": "Incidents and fixes"}),
    )
    .await;
    app.topic(&key, &channel, json!({"name": "governance"}))
        .await;
    let inbox = app.inbox_of(&key, &channel).await;

    // The wallet is on XMTP: the official SDK registers it first.
    let wallet_key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
    let mut sdk = Sdk::start().await;
    let user = sdk.create("wallet", &wallet_key, &app.xmtp_url).await;

    let mut pages = Pages::start(
        "subscribe",
        &[
            ("HERALD_URL", app.base.clone()),
            ("CHANNEL_ID", channel.clone()),
            ("CHANNEL_NAME", "Protocol alerts".into()),
            ("WALLET_KEY", wallet_key.clone()),
            ("TOPIC_OFF", "security".into()),
            (
                "SCREENSHOT",
                screenshot("subscribe.png").display().to_string(),
            ),
        ],
    )
    .await;
    assert_eq!(pages.next().await["phase"], "subscribed");
    // Queued while the wallet still receives `security` (scheduled, so nothing sends it yet);
    // then the page switches the topic off.
    let send_at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = app
        .post_announcement(
            &key,
            &channel,
            json!({ "text": "incident", "topic": "security", "send_at": send_at }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let queued = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["counts"]["pending"], 1, "{}", r.body);
    pages.say("continue").await;
    let result = pages.finish().await;
    let address = result["address"].as_str().unwrap().to_owned();
    assert_eq!(address, user.address.to_lowercase(), "{result}");
    assert_eq!(
        result["topics"],
        json!([["governance", true], ["security", true]]),
        "{result}"
    );

    // The consent log: a signature subscribe, then the topic switched off from the page.
    let consent = app
        .get(
            &format!("/v1/channels/{channel}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    assert_eq!(consent.body["status"], "active", "{}", consent.body);
    let entries = consent.body["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("subscribe", "signature"), ("topic_off", "signature")],
        "{entries:?}"
    );

    // The wallet's SDK client reads the next announcement.
    let text = format!("Upgrade window opens at 14:00 UTC ({})", ulid::Ulid::new());
    let r = app
        .post_announcement(&key, &channel, json!({ "text": text }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let done = wait_completed(&app, &key, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    let texts = sdk
        .dm_texts("wallet", &inbox)
        .await
        .expect("the SDK sees the DM");
    assert_eq!(texts, vec![text], "what the wallet reads");

    // Switched off on the page: the queued security announcement, once due, skips the wallet
    // (checked again at send time) ...
    make_due(&app, &queued).await;
    app.store.pipeline().wake_others().await.ok();
    let done = wait_completed(&app, &key, &queued).await;
    assert_eq!(done["counts"]["skipped"], 1, "{done}");
    let deliveries = app
        .get(&format!("/v1/announcements/{queued}/deliveries"), &key)
        .await;
    let item = &deliveries.body["items"][0];
    assert_eq!(item["address"], address.as_str(), "{}", deliveries.body);
    assert_eq!(item["status"], "skipped", "{item}");
    assert_eq!(item["reason"], "topic_opt_out", "{item}");
    // ... and a new one does not include it at all.
    let r = app
        .post_announcement(
            &key,
            &channel,
            json!({ "text": "again", "topic": "security" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["counts"]["total"], 0, "{}", r.body);
    let texts = sdk
        .dm_texts("wallet", &inbox)
        .await
        .expect("the SDK sees the DM");
    assert_eq!(texts.len(), 1, "nothing more reached the wallet: {texts:?}");
}

/// Moves a scheduled announcement's time to its creation (in the past), as if it had come
/// due; the workers' poll then sends it.
async fn make_due(app: &TestApp, id: &str) {
    let moved = app
        .raw_strings_bound(
            "UPDATE deliveries SET next_attempt_at = (SELECT created_at FROM announcements WHERE id = $1) \
             WHERE announcement_id = $1 RETURNING announcement_id",
            id,
        )
        .await;
    assert_eq!(moved.len(), 1);
    let moved = app
        .raw_strings_bound(
            "UPDATE announcements SET send_at = created_at WHERE id = $1 RETURNING id",
            id,
        )
        .await;
    assert_eq!(moved.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_imports_a_csv_sends_and_follows_progress_to_completion() {
    let app = TestApp::spawn_with(|c| c.xmtp.workers = 1).await;
    let key = app.tenant("console").await;

    // 1,000 rows under a header; three are not addresses.
    let mut csv = String::from("address,name\n");
    let bad = [
        (101, "0x123"),
        (502, "not-an-address"),
        (903, "0xzz00000000000000000000000000000000000000"),
    ];
    for i in 0..1000 {
        match bad.iter().find(|(at, _)| *at == i) {
            Some((_, value)) => csv.push_str(&format!("{value},bad {i}\n")),
            None => csv.push_str(&format!("0x{:040x},holder {i}\n", 0xc0_0000 + i)),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("holders.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let text = format!("Console says hi ({})", ulid::Ulid::new());

    let result = Pages::start(
        "console",
        &[
            ("HERALD_URL", app.base.clone()),
            ("API_KEY", key.clone()),
            ("CHANNEL_NAME", "Console news".into()),
            ("CSV_FILE", csv_path.display().to_string()),
            ("TEXT", text.clone()),
            (
                "SCREENSHOT",
                screenshot("console.png").display().to_string(),
            ),
        ],
    )
    .await
    .finish()
    .await;

    // A wrong key is refused in plain words; the right one stays in the tab, not the URL.
    let wrong = result["wrongKeyError"].as_str().unwrap();
    assert!(wrong.contains("API key was not accepted"), "{wrong}");
    // Chromium logs each refused request itself (the 401 sign-in and the 422 trigger);
    // nothing else may be logged.
    assert_eq!(
        result["allowedErrors"].as_array().unwrap().len(),
        2,
        "{result:#}"
    );
    assert_eq!(result["keyInUrl"], false);
    assert_eq!(result["storedKey"], key.as_str());
    assert_eq!(result["localStorageItems"], 0);

    // The channel exists; the import report names the three bad rows (file line numbers:
    // the header is line 1).
    let channel = result["channelId"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/v1/channels/{channel}"), &key).await;
    assert_eq!(read.body["name"], "Console news", "{}", read.body);
    let rows: Vec<(String, String)> = result["importErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = bad
        .iter()
        .map(|(i, v)| ((i + 2).to_string(), v.to_string()))
        .collect();
    assert_eq!(rows, expected, "{result:#}");
    assert_eq!(result["importBar"], json!([1000, 1000]), "{result:#}");
    let count = app
        .get(&format!("/v1/channels/{channel}/subscribers/count"), &key)
        .await;
    assert_eq!(count.body["active"], 997, "{}", count.body);
    assert_eq!(result["countText"], "(997 active)");

    // Sent as previewed; the progress bar reached 100% and its counts are the API's.
    assert_eq!(result["preview"], text.as_str());
    assert_eq!(result["progress"], json!([1, 1]), "{result:#}");
    let id = result["announcementId"].as_str().unwrap();
    let api = app.get(&format!("/v1/announcements/{id}"), &key).await;
    assert_eq!(api.body["status"], "completed", "{}", api.body);
    assert_eq!(api.body["text"], text.as_str());
    for k in ["delivered", "skipped", "failed", "pending"] {
        assert_eq!(
            result["counts"][k], api.body["counts"][k],
            "{k}: {result:#} vs {}",
            api.body
        );
    }
    assert_eq!(api.body["counts"]["total"], 997);
    assert_eq!(
        result["skippedRows"],
        json!(["skipped"]),
        "the outcome filter"
    );
    assert_eq!(
        result["phoneOverflow"], 0,
        "the console fits a 375 px screen"
    );

    // The trigger form shows the API's per-field errors under their fields.
    let errors = &result["triggerErrors"];
    for field in ["chain_id", "address", "event"] {
        assert!(
            !errors[field].as_str().unwrap().is_empty(),
            "{field}: {result:#}"
        );
    }
    assert_eq!(errors["template"], "", "{result:#}");
    assert_eq!(
        result["focused"], "trigger-chain_id",
        "focus moves to the first error"
    );
    // The consent log lists the imported subscribers (first page) and exports.
    assert_eq!(result["consentRows"], 100, "{result:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_page_explains_a_wallet_that_is_not_on_xmtp_before_any_signature() {
    let app = TestApp::spawn().await;
    let key = app.tenant("pages").await;
    let channel = app.channel(&key, "Protocol alerts").await;
    // Never registered on XMTP.
    let wallet_key = format!("0x{}", hex::encode(rand::random::<[u8; 32]>()));
    let result = Pages::start(
        "subscribe",
        &[
            ("HERALD_URL", app.base.clone()),
            ("CHANNEL_ID", channel.clone()),
            ("CHANNEL_NAME", "Protocol alerts".into()),
            ("WALLET_KEY", wallet_key),
            ("TOPIC_OFF", "none".into()),
            ("SCREENSHOT", "unused".into()),
            ("EXPECT_NOT_ON_XMTP", "1".into()),
        ],
    )
    .await
    .finish()
    .await;
    assert_eq!(result["subscribeShown"], false, "{result:#}");
    let warning = result["warning"].as_str().unwrap();
    assert!(warning.contains("not on XMTP yet"), "{warning}");
    assert!(warning.contains("not_on_xmtp"), "{warning}");
    // Nothing was signed or stored: no subscriber, no challenge spent.
    let address = result["address"].as_str().unwrap();
    let consent = app
        .get(
            &format!("/v1/channels/{channel}/subscribers/{address}/consent"),
            &key,
        )
        .await;
    assert_eq!(consent.body["status"], "never", "{}", consent.body);
}
