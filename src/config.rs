//! Configuration: loaded once at start from the embedded defaults, an optional file and
//! `HERALD_*` environment variables, then passed explicitly to whoever needs it.
//!
//! `config.default.toml` (embedded below) is both the source of defaults and the reference
//! documentation for every key. Secrets are `SecretString`, so `Debug` output never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The documented defaults, also shipped as the reference for operators.
pub const DEFAULT_TOML: &str = include_str!("config.default.toml");

/// Sections whose keys are reached from the environment as `HERALD_<SECTION>_<KEY>`.
const SECTIONS: &[&str] = &["http", "log", "quotas", "selfservice", "webhooks", "xmtp"];

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
    pub db_max_connections: u32,
    pub http: HttpConfig,
    pub log: LogConfig,
    /// EVM chains whose events triggers can watch (`[[chains]]`); none by default.
    #[serde(default)]
    pub chains: Vec<crate::chain::ChainConfig>,
    pub selfservice: SelfServiceConfig,
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
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Value(&'static str),
}

impl Config {
    /// Loads defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment =
            figment.merge(Env::prefixed("HERALD_").map(|key| env_key_to_path(key.as_str()).into()));
        let config: Config = with_default_database(figment)?.extract().map_err(invalid)?;
        let config = config.without_empty_secrets();
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    fn validate(&self) -> Result<(), ConfigError> {
        // An idempotency claim older than two minutes is presumed dead and may be taken over,
        // so no request may legitimately run that long.
        if !(1..=60).contains(&self.http.request_timeout_secs) {
            return Err(ConfigError::Value(
                "http.request_timeout_secs must be between 1 and 60",
            ));
        }
        if !(1..=300).contains(&self.http.header_read_timeout_secs) {
            return Err(ConfigError::Value(
                "http.header_read_timeout_secs must be between 1 and 300",
            ));
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::Value(
                "http.max_connections must be at least 1",
            ));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(ConfigError::Value(
                "http.body_limit_bytes must be at least 1024",
            ));
        }
        if !(10..=86_400).contains(&self.selfservice.challenge_ttl_secs) {
            return Err(ConfigError::Value(
                "selfservice.challenge_ttl_secs must be between 10 and 86400",
            ));
        }
        if self.selfservice.max_outstanding_challenges == 0 {
            return Err(ConfigError::Value(
                "selfservice.max_outstanding_challenges must be at least 1",
            ));
        }
        if self.quotas.max_import_batch == 0 {
            return Err(ConfigError::Value(
                "quotas.max_import_batch must be at least 1",
            ));
        }
        self.webhooks.validate().map_err(ConfigError::Value)?;
        if self.db_max_connections == 0 {
            return Err(ConfigError::Value("db_max_connections must be at least 1"));
        }
        Ok(())
    }

    /// Treats empty secret values as unset, so `HERALD_ADMIN_TOKEN=` (as compose files and
    /// templating often produce) means "generate one", not "the empty token".
    fn without_empty_secrets(mut self) -> Self {
        let empty = |s: &Option<SecretString>| {
            s.as_ref()
                .is_some_and(|v| v.expose_secret().trim().is_empty())
        };
        if empty(&self.admin_token) {
            self.admin_token = None;
        }
        if empty(&self.master_key) {
            self.master_key = None;
        }
        if empty(&self.master_key_previous) {
            self.master_key_previous = None;
        }
        self
    }

    /// Defaults only, with no file or environment: the basis for tests.
    pub fn defaults() -> Self {
        with_default_database(Figment::from(Toml::string(DEFAULT_TOML)))
            .and_then(|f| f.extract().map_err(invalid))
            .expect("embedded defaults are valid")
    }
}

fn invalid(err: figment::Error) -> ConfigError {
    ConfigError::Invalid(Box::new(err))
}

/// Without an explicit `database_url`, the embedded SQLite database lives in `data_dir`.
fn with_default_database(figment: Figment) -> Result<Figment, ConfigError> {
    // An empty value (e.g. `HERALD_DATABASE_URL=` from a template) counts as unset.
    let explicit = figment.find_value("database_url").ok();
    if explicit
        .as_ref()
        .and_then(|v| v.as_str())
        .is_some_and(|url| !url.trim().is_empty())
    {
        return Ok(figment);
    }
    let data_dir: PathBuf = figment.extract_inner("data_dir").map_err(invalid)?;
    let url = format!("sqlite://{}", data_dir.join("herald.db").display());
    Ok(figment.merge(Serialized::default("database_url", url)))
}

/// Maps an env key (already without `HERALD_`) to a config path: `HTTP_BODY_LIMIT_BYTES` →
/// `http.body_limit_bytes`, `DATABASE_URL` → `database_url`. Top-level keys contain underscores
/// too, so only known section names are split off.
fn env_key_to_path(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_env_keys_map_to_sections() {
        let config = Config::defaults();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.is_sqlite());
        assert_eq!(
            env_key_to_path("HTTP_BODY_LIMIT_BYTES"),
            "http.body_limit_bytes"
        );
        assert_eq!(env_key_to_path("DATABASE_URL"), "database_url");
        assert_eq!(env_key_to_path("LOG_FORMAT"), "log.format");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "herald.toml",
                "listen = \"0.0.0.0:9000\"\n[http]\nbody_limit_bytes = 2000\n",
            )?;
            jail.set_env("HERALD_HTTP_BODY_LIMIT_BYTES", "4000");
            jail.set_env("HERALD_DATABASE_URL", "postgres://localhost/herald");
            jail.set_env("HERALD_ADMIN_TOKEN", "");
            let config = Config::load(Some(Path::new("herald.toml"))).expect("loads");
            assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(config.http.body_limit_bytes, 4000);
            assert!(!config.database_url.is_sqlite());
            assert!(config.admin_token.is_none(), "empty secret means unset");
            jail.set_env("HERALD_DATABASE_URL", "");
            jail.set_env("HERALD_DATA_DIR", "/var/lib/herald");
            let config = Config::load(None).expect("loads");
            assert_eq!(
                config.database_url.expose(),
                "sqlite:///var/lib/herald/herald.db"
            );
            jail.set_env("HERALD_HTTP_REQUEST_TIMEOUT_SECS", "600");
            assert!(
                Config::load(None).is_err(),
                "timeouts beyond the idempotency lease are refused"
            );
            jail.set_env("HERALD_HTTP_REQUEST_TIMEOUT_SECS", "30");
            jail.set_env("HERALD_LISTN", "typo");
            assert!(Config::load(None).is_err(), "unknown keys are rejected");
            Ok(())
        });
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = Config::defaults();
        config.database_url = DatabaseUrl::new("postgres://u:hunter2@db/herald");
        config.admin_token = Some(SecretString::from("hadm_topsecret".to_owned()));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
    }
}
