//! Wiring: open the store, resolve secrets, build the HTTP router, bind the listener, and run
//! until the shutdown token fires.
//!
//! Background workers (the delivery pipeline, chain watchers) are spawned through
//! [`App::spawn_worker`] so they share the cancellation token and are awaited on shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::crypto::{generate_token, hash_token, MasterKey, ADMIN_TOKEN_PREFIX};
use crate::http::rate_limit::RateLimiter;
use crate::http::{self, AppState};
use crate::store::{self, Store};
use crate::telemetry;

/// Settings row holding the generated admin token's hash.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// File name of the generated master key inside the data folder (SQLite default only).
pub const MASTER_KEY_FILE: &str = "master.key";

/// A built, bound, not yet running herald.
pub struct App {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
    limits: http::serve::ConnectionLimits,
    shutdown: CancellationToken,
    workers: TaskTracker,
    xmtp: Arc<crate::xmtp::Xmtp>,
}

impl App {
    /// Connects to the database (migrating it), resolves the master key and admin token, and
    /// binds the listener (`127.0.0.1:0` picks a free port, as tests do).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        // Configuration mistakes fail before touching the database.
        let kek = resolve_master_key(config)?;
        crate::chain::ChainConfig::validate_all(&config.chains).context("[[chains]]")?;
        let store = store::connect(config)
            .await
            .context("opening the database")?;
        let admin_token_hash = resolve_admin_token(config, store.as_ref()).await?;
        let xmtp = crate::xmtp::Xmtp::start(&config.xmtp, &config.data_dir)
            .await
            .context("starting XMTP")?;
        let state = AppState {
            store,
            kek: Arc::new(kek),
            admin_token_hash: admin_token_hash.into(),
            rate_limiter: Arc::new(RateLimiter::new(config.http.rate_limit_per_second)),
            public_limiter: Arc::new(RateLimiter::per_minute(
                "public_client",
                config.selfservice.public_requests_per_minute,
                config.selfservice.public_burst,
            )),
            quotas: Arc::new(config.quotas.clone()),
            auth_cache: Arc::default(),
            metrics: telemetry::metrics_handle(),
            chains: config.chains.clone().into(),
            selfservice: Arc::new(config.selfservice.clone()),
            xmtp: xmtp.clone(),
            wake: crate::workers::Wake::default(),
            webhooks: Arc::new(config.webhooks.clone()),
        };
        let router = http::router(state.clone(), &config.http);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let app = Self {
            listener,
            state,
            router,
            limits: http::serve::ConnectionLimits {
                header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
                max_connections: config.http.max_connections,
            },
            shutdown: CancellationToken::new(),
            workers: TaskTracker::new(),
            xmtp: xmtp.clone(),
        };
        crate::workers::spawn_all(&app);
        if config.database_url.is_sqlite() {
            app.spawn_worker(|state, shutdown| {
                crate::workers::wal_checkpointer::run(state.store, shutdown)
            });
        }
        crate::workers::delivery::spawn(&app, xmtp);
        Ok(app)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// The configured chains (`[[chains]]`), one watcher each.
    pub fn chains(&self) -> Vec<crate::chain::ChainConfig> {
        self.state.chains.to_vec()
    }

    /// The master key (KEK).
    pub fn kek(&self) -> Arc<MasterKey> {
        self.state.kek.clone()
    }

    /// This app's delivery wake-up handle.
    pub fn wake(&self) -> crate::workers::Wake {
        self.state.wake.clone()
    }

    /// URL of the XMTP node herald sends through (the embedded node's when embedded).
    pub fn xmtp_url(&self) -> String {
        self.xmtp.url.clone()
    }

    /// Cancelling this token stops the HTTP server and every worker.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Spawns a background task that should exit when the token passed to it is cancelled.
    pub fn spawn_worker<F, Fut>(&self, worker: F)
    where
        F: FnOnce(AppState, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.workers
            .spawn(worker(self.state.clone(), self.shutdown.clone()));
    }

    /// Serves until the shutdown token is cancelled, then waits for workers to finish.
    pub async fn run(self) -> anyhow::Result<()> {
        tracing::info!(listen = %self.local_addr(), "herald listening");
        http::serve::serve(
            self.listener,
            self.router,
            self.limits,
            self.shutdown.clone(),
        )
        .await;
        self.shutdown.cancel();
        self.workers.close();
        self.workers.wait().await;
        self.xmtp.shutdown().await;
        Ok(())
    }
}

/// The KEK from config/env (with `master_key_previous` during a rotation); on the SQLite
/// default, generated once into the data folder.
pub fn resolve_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    let key = resolve_current_key(config)?;
    match &config.master_key_previous {
        Some(text) => {
            let previous =
                MasterKey::parse(text.expose_secret()).context("HERALD_MASTER_KEY_PREVIOUS")?;
            Ok(key.with_previous(&previous))
        }
        None => Ok(key),
    }
}

fn resolve_current_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(text) = &config.master_key {
        return MasterKey::parse(text.expose_secret()).context("HERALD_MASTER_KEY");
    }
    if !config.database_url.is_sqlite() {
        anyhow::bail!(
            "master_key (HERALD_MASTER_KEY) is required with Postgres: every replica must use the same key; \
             create one with `openssl rand -hex 32`"
        );
    }
    load_or_create_key_file(&config.data_dir.join(MASTER_KEY_FILE))
}

fn load_or_create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return MasterKey::parse(&text).with_context(|| format!("parsing {}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = MasterKey::generate();
    write_private(path, &key.to_hex()).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "no master key configured; generated one. Back this file up: without it channel keys cannot be decrypted"
    );
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// The admin token's hash: from config/env, else from the database, else generated now and
/// printed once on stdout (never logged).
async fn resolve_admin_token(config: &Config, store: &dyn Store) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(hash_token(token.expose_secret()));
    }
    if let Some(hash) = store.setting(ADMIN_TOKEN_SETTING).await? {
        return Ok(hash);
    }
    let token = generate_token(ADMIN_TOKEN_PREFIX);
    if store
        .insert_setting_if_absent(ADMIN_TOKEN_SETTING, &hash_token(&token))
        .await?
    {
        println!("Generated admin token (shown once, store it safely):\n{token}");
        return Ok(hash_token(&token));
    }
    // Another replica generated one first; use that.
    store
        .setting(ADMIN_TOKEN_SETTING)
        .await?
        .context("admin token setting vanished")
}
