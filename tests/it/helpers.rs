//! `TestApp`: a real herald on `127.0.0.1:0` with its own fresh database.
//!
//! SQLite (a temp file) by default; when `TEST_DATABASE_URL` points at a Postgres server, each
//! app gets its own freshly created database there, so tests run in parallel without sharing
//! state.

use std::sync::Arc;

use herald::app::App;
use herald::config::{Config, DatabaseUrl};
use herald::crypto::MasterKey;
use herald::store::Store;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "hadm_testadmintoken0000000000000000000000000";

/// A checksummed address from EIP-55's own examples.
pub const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub database_url: String,
    pub kek: MasterKey,
    /// The XMTP node this app sends through.
    pub xmtp_url: String,
    shutdown: CancellationToken,
    /// The configuration the app runs with (for [`TestApp::restart`]).
    config: Config,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A response's status and JSON body (`Value::Null` when the body is empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns an app after letting the test adjust the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match std::env::var("TEST_DATABASE_URL") {
            Ok(server) if !server.is_empty() => fresh_postgres_database(&server).await,
            _ => format!("sqlite://{}", dir.path().join("herald.db").display()),
        };
        let kek = MasterKey::generate();
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = DatabaseUrl::new(database_url.clone());
        config.data_dir = dir.path().to_owned();
        config.master_key = Some(SecretString::from(kek.to_hex()));
        config.admin_token = Some(SecretString::from(ADMIN_TOKEN.to_owned()));
        config.db_max_connections = 5;
        // Every app runs its own embedded XMTP node on a free port.
        config.xmtp.embedded_listen = "127.0.0.1:0".parse().unwrap();
        // One app per database: the embedded node is fine on Postgres here.
        config.xmtp.embedded_with_postgres = true;
        // API tests look at deliveries as enqueued; pipeline tests turn the workers on.
        config.xmtp.workers = 0;
        adjust(&mut config);
        let app = App::build(&config).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let store = app.store();
        let xmtp_url = app.xmtp_url();
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(async move { app.run().await.expect("app runs") });
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            database_url,
            kek,
            xmtp_url,
            shutdown,
            config,
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops the app (as a shutdown would: workers end, leases stay until they expire or are
    /// released) and starts a new one on the same database, data folder and configuration.
    /// The HTTP address and an embedded node's port change.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`TestApp::restart`] after letting the test change the configuration.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        adjust(&mut self.config);
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let app = App::build(&self.config).await.expect("app rebuilds");
        self.base = format!("http://{}", app.local_addr());
        self.store = app.store();
        self.xmtp_url = app.xmtp_url();
        self.shutdown = app.shutdown_token();
        self.task = Some(tokio::spawn(
            async move { app.run().await.expect("app runs") },
        ));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates a tenant through the admin API and returns its API key.
    pub async fn tenant(&self, name: &str) -> String {
        let reply = self
            .post("/v1/tenants", ADMIN_TOKEN, json!({ "name": name }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["api_key"].as_str().unwrap().to_owned()
    }

    /// Creates a channel and returns its id.
    pub async fn channel(&self, key: &str, name: &str) -> String {
        let reply = self
            .post("/v1/channels", key, json!({ "name": name }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// The channel's XMTP inbox id once it is registered. Creation registers it within the
    /// request when it can (10 s at most); on a loaded machine that can be deferred to a
    /// delivery worker, which registers it moments later.
    pub async fn inbox_of(&self, key: &str, channel: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ch = self.get(&format!("/v1/channels/{channel}"), key).await.body;
            if let Some(inbox) = ch["xmtp"]["inbox_id"].as_str() {
                return inbox.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the channel was not registered within 60 s: {ch}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Creates a topic on `channel` (`body` as the API takes it: name, default, description).
    pub async fn topic(&self, key: &str, channel: &str, body: Value) {
        let reply = self
            .post(&format!("/v1/channels/{channel}/topics"), key, body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    /// Subscribes `addresses` to a channel through the batch endpoint.
    pub async fn subscribe(&self, key: &str, channel: &str, addresses: &[String]) {
        let reply = self
            .post(
                &format!("/v1/channels/{channel}/subscribers/batch"),
                key,
                json!({ "addresses": addresses }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    /// Posts an announcement to `channel` (the reply is returned unchecked: tests assert on it).
    pub async fn post_announcement(&self, key: &str, channel: &str, body: Value) -> Reply {
        let path = format!("/v1/channels/{channel}/announcements");
        self.post(&path, key, body).await
    }

    /// Runs one SQL query returning a single BLOB/BYTEA column, on whichever backend is in use.
    pub async fn raw_bytes(&self, sql: &str, bind: &str) -> Vec<u8> {
        let rows = self.raw_column(sql, Some(bind)).await;
        rows.into_iter().next().expect("the query returns a row")
    }

    /// Runs one SQL query returning text columns of all rows, on whichever backend is in use.
    pub async fn raw_strings(&self, sql: &str) -> Vec<String> {
        self.raw_column(sql, None).await
    }

    /// Runs one SQL statement with `bind` as `$1`, returning the text column of all rows.
    pub async fn raw_strings_bound(&self, sql: &str, bind: &str) -> Vec<String> {
        self.raw_column(sql, Some(bind)).await
    }

    /// The single column of every row of `sql` (with `bind` as `$1`), read on a fresh
    /// connection to whichever backend the app runs on.
    async fn raw_column<T>(&self, sql: &str, bind: Option<&str>) -> Vec<T>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let url = &self.database_url;
        if url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            let query = sqlx::query_scalar(sql);
            let query = match bind {
                Some(value) => query.bind(value),
                None => query,
            };
            query.fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let query = sqlx::query_scalar(sql);
            let query = match bind {
                Some(value) => query.bind(value),
                None => query,
            };
            query.fetch_all(&mut conn).await.unwrap()
        }
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request reaches the app");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// Creates a uniquely named database on the server and returns its URL.
pub async fn fresh_postgres_database(server: &str) -> String {
    let name = format!(
        "herald_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("TEST_DATABASE_URL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = server.split_once('?').map_or((server, ""), |(p, q)| (p, q));
    let (root, _) = prefix.rsplit_once('/').expect("URL has a database path");
    format!("{root}/{name}")
}

/// `n` distinct valid lowercase addresses, deterministic per `seed`.
pub fn addresses(seed: u8, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("0x{seed:02x}{:038x}", i)).collect()
}

/// The pipeline's send-time rule for one address, through the same store calls the delivery
/// worker makes (`active_subscribers`, then `topic_receivers` for an announcement's topic).
pub async fn deliverable(
    store: &dyn Store,
    channel: &herald::domain::ChannelId,
    address: &herald::domain::Address,
    topic: Option<&str>,
) -> bool {
    let one = [address.as_str().to_owned()];
    let active = store
        .pipeline()
        .active_subscribers(channel, std::slice::from_ref(address))
        .await
        .unwrap();
    if !active.contains(address) {
        return false;
    }
    match topic {
        None => true,
        Some(topic) => store
            .topic_receivers(channel, topic, &one)
            .await
            .unwrap()
            .contains(&one[0]),
    }
}
