//! One signed POST to one endpoint, connecting only to the addresses the guard checked.

use std::time::Duration;

use alloy::transports::http::reqwest;

use super::guard::{self, AllowList, GuardError};
use super::sign;

/// Why a send did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL no longer passes the SSRF guard. Retryable only when DNS failed.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The endpoint answered with a non-2xx status. Retryable.
    #[error("endpoint answered {0}")]
    Status(u16),
    /// No answer: connection refused or reset, TLS failure, timeout. Retryable.
    #[error("request failed: {0}")]
    Transport(String),
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Guard(g) => g.is_retryable(),
            SendError::Status(_) | SendError::Transport(_) => true,
        }
    }

    /// The HTTP status the endpoint answered, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            SendError::Status(code) => Some(*code),
            _ => None,
        }
    }
}

/// A message ready to send: its id, body and the signing keys (current first).
pub struct Message<'a> {
    pub id: &'a str,
    pub body: &'a str,
    pub keys: &'a [Vec<u8>],
}

/// POSTs `message` to `url` with Standard Webhooks headers; `Ok(status)` on a 2xx answer.
/// Redirects are not followed (the target would escape the guard).
pub async fn post(
    url: &str,
    message: &Message<'_>,
    allow: &AllowList,
    timeout: Duration,
) -> Result<u16, SendError> {
    let checked = guard::check(url, allow).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .resolve_to_addrs(&checked.host, &checked.addrs)
        .build()
        .map_err(|e| SendError::Transport(e.to_string()))?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign::signature_header(message.keys, message.id, timestamp, message.body);
    let response = client
        .post(checked.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("herald-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.body.to_owned())
        .send()
        .await
        .map_err(|e| SendError::Transport(without_url(&e)))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(SendError::Status(status))
    }
}

/// The error's text without the URL (it may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    kind.to_owned()
}
