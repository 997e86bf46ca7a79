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
        figment = figment.merge(
            Env::prefixed("HERALD_")
                .filter(|key| !CLI_ENV_VARS.contains(&key.as_str().to_ascii_lowercase().as_str()))
                .map(|key| env_key_to_path(key.as_str()).into()),
        );
        check_database_scheme(&figment)?;
        let config: Config = with_default_database(figment)?.extract().map_err(invalid)?;
        let config = config.without_empty_secrets().with_public_url()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    fn validate(&self) -> Result<(), ConfigError> {
        self.refuse_placeholders()?;
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
        if !(60..=86_400).contains(&self.selfservice.session_ttl_secs) {
            return Err(ConfigError::Value(
                "selfservice.session_ttl_secs must be between 60 and 86400",
            ));
        }
        self.pages.validate().map_err(ConfigError::Value)?;
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

    /// Derives the SIWE domain and URI from `public_url`, where those still have their
    /// defaults.
    fn with_public_url(mut self) -> Result<Self, ConfigError> {
        let Some(url) = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            self.public_url = None;
            return Ok(self);
        };
        let bad = || {
            ConfigError::Scheme(format!(
                "`public_url` (HERALD_PUBLIC_URL) = {url:?} is not an http:// or https:// URL with \
                 a host, e.g. https://herald.example.com"
            ))
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(bad());
        }
        let defaults = Self::defaults().selfservice;
        if self.selfservice.siwe_domain == defaults.siwe_domain {
            self.selfservice.siwe_domain = authority.to_owned();
        }
        if self.selfservice.siwe_uri == defaults.siwe_uri {
            self.selfservice.siwe_uri = url.trim_end_matches('/').to_owned();
        }
        self.public_url = Some(url.to_owned());
        Ok(self)
    }

    /// Refuses secrets still set to an example file's placeholder (`deploy/k8s/secret.example.yaml`).
    fn refuse_placeholders(&self) -> Result<(), ConfigError> {
        let secret = |s: &Option<SecretString>| {
            s.as_ref()
                .is_some_and(|v| is_placeholder(v.expose_secret()))
        };
        let checks: [(bool, &'static str, &'static str, &'static str); 5] = [
            (
                is_placeholder(self.database_url.expose()),
                "database_url",
                "HERALD_DATABASE_URL",
                "put the real database password in the URL",
            ),
            (
                secret(&self.master_key),
                "master_key",
                "HERALD_MASTER_KEY",
                "generate one with `openssl rand -hex 32`",
            ),
            (
                secret(&self.master_key_previous),
                "master_key_previous",
                "HERALD_MASTER_KEY_PREVIOUS",
                "set the previous master key or remove the setting",
            ),
            (
                secret(&self.admin_token),
                "admin_token",
                "HERALD_ADMIN_TOKEN",
                "generate one with `echo hadm_$(openssl rand -hex 24)`, or remove it to have herald generate one",
            ),
            (
                secret(&self.xmtp.gateway_auth_token),
                "xmtp.gateway_auth_token",
                "HERALD_XMTP_GATEWAY_AUTH_TOKEN",
                "set your gateway's credential or remove the setting",
            ),
        ];
        match checks.into_iter().find(|(hit, ..)| *hit) {
            Some((_, key, env, fix)) => Err(ConfigError::Placeholder { key, env, fix }),
            None => Ok(()),
        }
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
    let lines: Vec<String> = err.into_iter().map(|e| describe(&e)).collect();
    ConfigError::Invalid(lines.join("; "))
}

/// The environment variable of a config path: `http.body_limit_bytes` →
/// `HERALD_HTTP_BODY_LIMIT_BYTES`.
pub fn env_var(path: &str) -> String {
    format!("HERALD_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// One figment error as "`key` (HERALD_KEY) from SOURCE: problem; fix".
fn describe(e: &figment::Error) -> String {
    use figment::error::Kind;
    let from = e
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(source) => format!(" (from {source})"),
            None if m.name.contains("environment") => " (from the environment)".to_owned(),
            None => String::new(),
        })
        .unwrap_or_default();
    let mut path = e.path.join(".");
    let joined = |path: &str, field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else if e.path.last().is_some_and(|last| last == field) {
            path.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let problem = match &e.kind {
        Kind::UnknownField(field, expected) => {
            path = joined(&path, field);
            format!(
                "is not a setting; check its spelling (known here: {})",
                expected.join(", ")
            )
        }
        Kind::MissingField(field) => {
            path = joined(&path, field);
            "is required; set it".to_owned()
        }
        Kind::InvalidType(actual, expected) => format!("is {actual}, expected {expected}"),
        Kind::InvalidValue(actual, expected) => format!("is {actual}, expected {expected}"),
        Kind::UnknownVariant(given, expected) => {
            format!("is \"{given}\", expected one of: {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    if path.is_empty() {
        return format!("{problem}{from}; {REFERENCE}");
    }
    format!("`{path}` ({}){from} {problem}; {REFERENCE}", env_var(&path))
}

/// The database URL's scheme is checked before anything else, so a wrong backend is the
/// first (and only) thing reported.
fn check_database_scheme(figment: &Figment) -> Result<(), ConfigError> {
    let Ok(url) = figment.extract_inner::<String>("database_url") else {
        return Ok(());
    };
    let url = url.trim();
    if url.is_empty() {
        return Ok(());
    }
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("sqlite" | "postgres" | "postgresql") => Ok(()),
        Some(scheme) => Err(ConfigError::Scheme(format!(
            "`database_url` (HERALD_DATABASE_URL) uses `{scheme}://`, which herald does not \
             support; use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB"
        ))),
        None => Err(ConfigError::Scheme(
            "`database_url` (HERALD_DATABASE_URL) is not a URL; use sqlite://PATH or \
             postgres://USER:PASSWORD@HOST:PORT/DB"
                .to_owned(),
        )),
    }
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
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
    fn page_framing_and_session_lifetime_are_checked() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None).expect("loads");
            assert!(config.pages.enabled);
            assert_eq!(config.pages.frame_ancestors, "*");
            assert_eq!(config.selfservice.session_ttl_secs, 3600);
            jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", "https://a.example 'self'");
            let config = Config::load(None).expect("loads");
            assert_eq!(config.pages.frame_ancestors, "https://a.example 'self'");
            for bad in [
                "*; script-src *",
                "https://a.example, https://b.example",
                " ",
            ] {
                jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", bad);
                assert!(Config::load(None).is_err(), "{bad:?} is refused");
            }
            jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", "'none'");
            jail.set_env("HERALD_SELFSERVICE_SESSION_TTL_SECS", "5");
            assert!(Config::load(None).is_err(), "too short a session");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
    fn the_public_url_sets_the_siwe_domain_and_uri() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_PUBLIC_URL", "https://herald.example.com:8443/");
            let config = Config::load(None).expect("loads");
            assert_eq!(config.selfservice.siwe_domain, "herald.example.com:8443");
            assert_eq!(
                config.selfservice.siwe_uri,
                "https://herald.example.com:8443"
            );
            jail.set_env("HERALD_SELFSERVICE_SIWE_DOMAIN", "other.example");
            let config = Config::load(None).expect("loads");
            assert_eq!(
                config.selfservice.siwe_domain, "other.example",
                "explicit wins"
            );
            jail.set_env("HERALD_PUBLIC_URL", "herald.example.com");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("HERALD_PUBLIC_URL"), "{err}");
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
