//! `herald announce`: create an announcement, and with `--wait` follow it to the end.
//!
//! Following polls `GET /v1/announcements/{id}` (one small read per interval); the bar counts
//! settled deliveries (delivered + skipped + failed) out of the total.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{segment, Client, ClientError};

/// Pause between two status reads while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What to announce.
pub struct AnnounceRequest {
    pub channel: String,
    pub text: String,
    pub topic: Option<String>,
    pub priority: Option<String>,
    pub idempotency_key: Option<String>,
}

/// The created announcement, and with `--wait` its final state.
pub struct AnnounceResult {
    pub id: String,
    /// `GET /v1/announcements/{id}` once nothing was pending (None without `--wait`).
    pub finished: Option<Value>,
}

impl AnnounceResult {
    /// Deliveries that ended `failed` (0 without `--wait`).
    pub fn failed(&self) -> i64 {
        self.finished
            .as_ref()
            .and_then(|a| a["counts"]["failed"].as_i64())
            .unwrap_or(0)
    }
}

/// Creates the announcement; `on_created` sees its id at once (the CLI prints it before
/// waiting, so a script has it even if the wait is interrupted). With `wait`, follows it
/// until it is `completed` or `cancelled`, drawing a progress bar on stderr when that is a
/// terminal.
pub async fn announce(
    client: &Client,
    request: AnnounceRequest,
    wait: bool,
    on_created: impl FnOnce(&str),
) -> Result<AnnounceResult, ClientError> {
    let mut body = json!({ "text": request.text });
    if let Some(topic) = request.topic {
        body["topic"] = json!(topic);
    }
    if let Some(priority) = request.priority {
        body["priority"] = json!(priority);
    }
    let mut headers = Vec::new();
    if let Some(key) = request.idempotency_key.as_deref() {
        headers.push(("Idempotency-Key", key));
    }
    let path = format!("/v1/channels/{}/announcements", segment(&request.channel));
    let created = client.post(&path, &body, &headers).await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| ClientError::Unexpected {
            url: path.clone(),
            status: 202,
            detail: "no announcement id in the answer".into(),
        })?
        .to_owned();
    on_created(&id);
    let finished = if wait {
        Some(follow(client, &id).await?)
    } else {
        None
    };
    Ok(AnnounceResult { id, finished })
}

/// Polls the announcement until nothing is pending any more, moving the bar as deliveries
/// settle.
async fn follow(client: &Client, id: &str) -> Result<Value, ClientError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} settled ({msg}) ETA {eta}",
        )
        .expect("the template is valid"),
    );
    let path = format!("/v1/announcements/{}", segment(id));
    loop {
        let current = client.get(&path).await?;
        let counts = &current["counts"];
        let number = |field: &str| counts[field].as_i64().unwrap_or(0).max(0) as u64;
        bar.set_length(number("total"));
        bar.set_position(number("total").saturating_sub(number("pending")));
        bar.set_message(format!(
            "{} delivered, {} skipped, {} failed, status {}",
            number("delivered"),
            number("skipped"),
            number("failed"),
            current["status"].as_str().unwrap_or("?")
        ));
        if matches!(current["status"].as_str(), Some("completed" | "cancelled")) {
            bar.finish();
            return Ok(current);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
