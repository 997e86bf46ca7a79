//! Loading: defaults, file and environment merged, then checked and completed (public URL,
//! placeholders, empty secrets); errors name the key and the fix.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};

use super::{is_placeholder, Config, ConfigError, CLI_ENV_VARS, DEFAULT_TOML, REFERENCE, SECTIONS};

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
pub(super) fn env_key_to_path(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key
}
