//! The console: a CSV import with bad rows reported, a send followed to completion, and the
//! trigger form's per-field errors.

use super::*;

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
