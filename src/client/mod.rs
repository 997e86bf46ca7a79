//! The tenant command line's side of the REST API: a small client for a running herald
//! (`herald announce`, `herald subscribers import`), authenticated with a tenant API key.
//!
//! It speaks only the public `/v1` API (the same JSON a tenant's own code would send), so it
//! works against any herald version that serves that API, local or remote. Nothing here
//! touches the database or the configuration of the server.

mod announce;
mod cli;
mod import;

pub use announce::{announce, AnnounceRequest, AnnounceResult};
pub use cli::{run_announce, run_subscribers, AnnounceArgs, Connection, SubscribersCommand};
pub use import::{import_csv, read_csv, CsvRow, ImportReport, RowError};

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

/// Exit status when herald refused a request (its `{code, detail}` is printed).
pub const EXIT_API_ERROR: u8 = 3;
/// Exit status when the request went through but part of the work did not: an announcement
/// with failed deliveries, an import with refused rows.
pub const EXIT_PARTIAL: u8 = 4;

/// How long one HTTP call may take before the CLI gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to herald did not give the answer the CLI needed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// herald answered with an error body; not retried (the CLI reports it and stops).
    #[error("herald refused the request ({status}): {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
    },
    /// No answer (connection refused, timeout, TLS); the user may run the command again.
    #[error("could not reach herald at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON the API documents (a proxy page, another service).
    #[error("unexpected answer from {url} ({status}): {detail}")]
    Unexpected {
        url: String,
        status: u16,
        detail: String,
    },
    /// The URL or API key cannot be used at all.
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// The process exit status this error maps to: API refusals have their own.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api { .. } => EXIT_API_ERROR,
            _ => 1,
        }
    }
}

/// A tenant's connection to one herald: base URL plus API key.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for `base` (e.g. `https://herald.example.org`) authenticated with `api_key`.
    pub fn new(base: &str, api_key: &SecretString) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Setup(format!(
                "HERALD_URL must start with http:// or https:// (got {base:?})"
            )));
        }
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", api_key.expose_secret().trim()))
                .map_err(|_| ClientError::Setup("the API key has invalid characters".into()))?;
        // Keeps the key out of any debug print of the headers.
        bearer.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, bearer);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("herald-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(format!("HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// `GET path`, the JSON answer.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None, &[]).await
    }

    /// `POST path` with a JSON body and extra headers, the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        self.call(Method::POST, path, Some(body), headers).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).expect("a JSON value serializes"));
        }
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        match json {
            Some(value) if status.is_success() => Ok(value),
            Some(value) if value["code"].is_string() => Err(ClientError::Api {
                status: status.as_u16(),
                code: value["code"].as_str().unwrap_or_default().to_owned(),
                detail: value["detail"].as_str().unwrap_or_default().to_owned(),
            }),
            _ => Err(ClientError::Unexpected {
                url,
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }
}

/// Percent-encodes one path segment (ids are plain ASCII, but a typo should not change the
/// path being called).
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
