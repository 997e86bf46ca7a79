//! Configuration: loaded once at start from the embedded defaults, an optional file and
//! `HERALD_*` environment variables, then passed explicitly to whoever needs it.
//!
//! `config.default.toml` (embedded below) is both the source of defaults and the reference
//! documentation for every key. Secrets are `SecretString`, so `Debug` output never shows them.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The documented defaults, also shipped as the reference for operators.
pub const DEFAULT_TOML: &str = include_str!("config.default.toml");

/// Sections whose keys are reached from the environment as `HERALD_<SECTION>_<KEY>`.
const SECTIONS: &[&str] = &[
    "http",
    "log",
    "pages",
    "quotas",
    "selfservice",
    "webhooks",
    "xmtp",
];

/// `HERALD_*` variables that belong to the command line, not to the configuration (`clap`
/// reads them): the loader skips them (lowercase, without the prefix).
pub const CLI_ENV_VARS: &[&str] = &["config", "inbox_key", "url", "api_key"];

/// Where every key is documented.
const REFERENCE: &str =
    "every key is documented in src/config.default.toml (`herald serve --help`)";

/// All settings herald reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    pub master_key: Option<SecretString>,
    /// The master key being rotated away: values sealed under it still open (see
    /// `herald keys rotate-master`).
    #[serde(default)]
    pub master_key_previous: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    /// Where subscribers and clients reach herald; sets the SIWE domain and URI.
    #[serde(default)]
    pub public_url: Option<String>,
    pub db_max_connections: u32,
    pub http: HttpConfig,
    pub log: LogConfig,
    /// EVM chains whose events triggers can watch (`[[chains]]`); none by default.
    #[serde(default)]
    pub chains: Vec<crate::chain::ChainConfig>,
    pub selfservice: SelfServiceConfig,
    /// The browser pages herald serves (`[pages]`): subscribe page and console.
    pub pages: PagesConfig,
    pub quotas: QuotaConfig,
    pub xmtp: crate::xmtp::XmtpConfig,
    /// Signed webhooks to tenants (`[webhooks]`).
    pub webhooks: crate::webhooks::WebhookConfig,
}

/// Per-tenant quotas; 0 turns one off. Refusals are 429 `quota_exceeded`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Active subscribers across a tenant's channels.
    pub max_active_subscribers: u64,
    /// Recipients of a tenant's unfinished (queued or sending) announcements; a new
    /// announcement is refused while they reach this.
    pub max_pending_deliveries: u64,
    /// Addresses in one batch import (`POST …/subscribers/batch`).
    pub max_import_batch: usize,
    /// Active API keys per tenant.
    pub max_api_keys: u32,
}

/// Subscriber self-service: wallet-signature challenges and chat replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfServiceConfig {
    /// Domain (host[:port]) written into SIWE challenges; wallets show it to the signer.
    pub siwe_domain: String,
    /// URI written into SIWE challenges.
    pub siwe_uri: String,
    /// How long a challenge may be signed and submitted.
    pub challenge_ttl_secs: u64,
    /// Reply to a wallet's first chat message when its channel has no welcome text of its own.
    pub welcome_text: String,
    /// Public (keyless) requests per minute per client address; 0 turns the limit off.
    pub public_requests_per_minute: u32,
    /// Public requests a client may send in a burst.
    pub public_burst: u32,
    /// Header naming the client address when herald runs behind a trusted proxy (e.g.
    /// `x-forwarded-for`, last entry); empty: the connection's peer address.
    pub client_ip_header: String,
    /// Unused, unexpired challenges one channel may have at once.
    pub max_outstanding_challenges: u32,
    /// Lifetime of the subscriber session token a wallet-signature subscribe returns (it
    /// authorises that subscriber's own topic preferences).
    pub session_ttl_secs: u64,
}

/// `[pages]`: the subscribe page (`/subscribe/{channel_id}`) and the console (`/console`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesConfig {
    /// Whether herald serves the pages at all (the API is unaffected).
    pub enabled: bool,
    /// CSP `frame-ancestors` of the subscribe page: who may embed it in an `<iframe>`.
    pub frame_ancestors: String,
}

impl PagesConfig {
    /// A source list is words without `;`, `,` or control characters (they would end or
    /// split the CSP header's directive).
    fn validate(&self) -> Result<(), &'static str> {
        let value = self.frame_ancestors.trim();
        if value.is_empty()
            || value
                .chars()
                .any(|c| c == ';' || c == ',' || c.is_control())
        {
            return Err("pages.frame_ancestors must be a CSP source list such as \"*\", \"'none'\" or \"https://a.example https://b.example\"");
        }
        Ok(())
    }
}

/// HTTP limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    /// Seconds a client has to send a request's complete headers.
    pub header_read_timeout_secs: u64,
    /// HTTP connections open at once.
    pub max_connections: usize,
    pub rate_limit_per_second: u32,
}

/// Log output settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A database URL; `Debug` hides it because Postgres URLs often carry a password.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({}://***)", self.scheme())
    }
}

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn scheme(&self) -> &str {
        self.expose().split(':').next().unwrap_or("")
    }

    /// True when the URL selects the embedded SQLite backend.
    pub fn is_sqlite(&self) -> bool {
        self.scheme() == "sqlite"
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One line per problem, each naming the key, its environment variable and the fix.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("configuration file {0} does not exist (given with --config or HERALD_CONFIG)")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Scheme(String),
    #[error("invalid configuration: {0}")]
    Value(&'static str),
    #[error(
        "invalid configuration: {key} ({env}) is still the example placeholder (\"CHANGE-ME\"); {fix}"
    )]
    Placeholder {
        key: &'static str,
        env: &'static str,
        fix: &'static str,
    },
}

/// Whether a secret is an example file's placeholder, e.g. `CHANGE-ME-64-HEX-CHARACTERS` or a
/// URL with `CHANGE-ME` as its password.
pub fn is_placeholder(value: &str) -> bool {
    let folded: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    folded.contains("changeme")
}

mod load;
#[cfg(test)]
mod tests;

pub use load::env_var;
