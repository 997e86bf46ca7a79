//! herald's local XMTP v3 node.
//!
//! The public XMTP network cannot be reached from herald's machines, so herald ships its
//! own node: a tonic gRPC server on plain HTTP/2 (h2c) that serves the two services the
//! official SDK (libxmtp 1.10) uses, `xmtp.identity.api.v1.IdentityApi` and
//! `xmtp.mls.api.v1.MlsApi`, with xmtp-node-go's semantics (ids, paging, dedup,
//! subscription replay, identity-update validation). It never decrypts anything.
//!
//! The same listener and store also serve the decentralized network's API (d14n: the
//! gateway's `PayerApi`, the node's `ReplicationApi`, `grpc.health.v1`; docs/D14N.md), so a
//! v3 client and a d14n client (`gatewayHost` = this URL) exchange the same messages.
//!
//! Reading order: [`mls_wire`] (what is parsed from MLS bytes), `store` (state, paging,
//! `--data` log), `service` (gRPC handlers, subscriptions), [`ratelimit`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), xmtp_devnode::DevNodeError> {
//! let node = xmtp_devnode::DevNode::start(xmtp_devnode::DevNodeConfig::default()).await?;
//! println!("XMTP v3 node at {}", node.url());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

pub mod mls_wire;
pub mod ratelimit;
mod service;
mod store;

pub use service::Node;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xmtp_proto::identity_api::identity_api_server::IdentityApiServer;
use xmtp_proto::mls_api::mls_api_server::MlsApiServer;

pub use ratelimit::RateLimit;
pub use store::StoreError;

/// Largest request or response the node accepts (xmtp-node-go's limit).
const MAX_MESSAGE_BYTES: usize = 50 * 1024 * 1024;

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevNodeError {
    /// The listen address could not be bound. Not retryable (pick another address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The data directory could not be opened or replayed. Not retryable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed while running.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The TLS certificate or key could not be read or used. Not retryable.
    #[error("TLS: {0}")]
    Tls(String),
}

impl DevNodeError {
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// `herald devnode` options (flatten into the service's clap command).
#[derive(Debug, Clone, clap::Args)]
pub struct DevNodeArgs {
    /// Address for the gRPC (h2c) listener; the SDK's `env: "local"` uses 127.0.0.1:5556.
    #[arg(long, default_value = "127.0.0.1:5556")]
    pub listen: SocketAddr,
    /// Persist state in this directory (default: memory only, lost on exit).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Limit writes per client like the public network (3,000 burst, then 600/min).
    #[arg(long)]
    pub rate_limit: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key. Clients then use https://.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// A certificate chain and its private key, both PEM, for serving TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads both files.
    pub fn read(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, DevNodeError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| DevNodeError::Tls(format!("cannot read {}: {e}", p.display())))
        };
        Ok(Self {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct DevNodeConfig {
    /// Port 0 picks a free port; read it back from [`DevNodeHandle::local_addr`].
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub rate_limit: Option<RateLimit>,
    /// Serve TLS (ALPN h2) instead of cleartext h2c.
    pub tls: Option<TlsIdentity>,
}

impl Default for DevNodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            rate_limit: None,
            tls: None,
        }
    }
}

impl TryFrom<DevNodeArgs> for DevNodeConfig {
    type Error = DevNodeError;

    fn try_from(a: DevNodeArgs) -> Result<Self, DevNodeError> {
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => Some(TlsIdentity::read(cert, key)?),
            _ => None,
        };
        Ok(Self {
            listen: a.listen,
            data_dir: a.data,
            rate_limit: a.rate_limit.then(RateLimit::default),
            tls,
        })
    }
}

/// Entry point of the node.
pub struct DevNode;

impl DevNode {
    /// Binds, loads state and starts serving in the background.
    pub async fn start(config: DevNodeConfig) -> Result<DevNodeHandle, DevNodeError> {
        let store = match &config.data_dir {
            Some(dir) => store::Store::open(dir)?,
            None => store::Store::in_memory(),
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| DevNodeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| DevNodeError::Bind {
            addr: config.listen,
            source,
        })?;
        let limiter = config
            .rate_limit
            .map(|limit| Arc::new(ratelimit::RateLimiter::new(limit)));
        let node = service::Node::new(store.clone(), limiter.clone());
        let identity = IdentityApiServer::new(node.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (gateway, replication, health) =
            // Behind TLS, GetNodes must list the https:// form of this listener.
            service::d14n::servers(
                node.clone(),
                MAX_MESSAGE_BYTES,
                config.tls.as_ref().map(|_| format!("https://{addr}")),
            );
        let mls = MlsApiServer::new(node.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        // `Server::tcp_nodelay` is ignored for a caller-supplied incoming stream, so Nagle would
        // hold every small response back ~40 ms; set it on the accepted sockets instead.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| DevNodeError::Tls(e.to_string()))?;
        }
        let server = builder
            .add_service(identity)
            .add_service(mls)
            .add_service(gateway)
            .add_service(replication)
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        let task = tokio::spawn(server);
        tracing::info!(%addr, tls = config.tls.is_some(), persistent = config.data_dir.is_some(), rate_limit = config.rate_limit.is_some(), "XMTP devnode listening");
        Ok(DevNodeHandle {
            addr,
            tls: config.tls.is_some(),
            stop: Some(stop_tx),
            task,
            store,
            limiter,
            node,
        })
    }
}

/// A running node; dropping it without [`DevNodeHandle::shutdown`] leaves it running until
/// the runtime ends.
pub struct DevNodeHandle {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    store: Arc<store::Store>,
    limiter: Option<Arc<ratelimit::RateLimiter>>,
    node: Node,
}

impl DevNodeHandle {
    /// The node's request handlers, for a caller in the same process (the `IdentityApi` and
    /// `MlsApi` traits called directly: same validation and storage, no gRPC hop).
    pub fn node(&self) -> Node {
        self.node.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (`https://ADDR` when serving TLS), the form the SDK's `apiUrl` and tonic
    /// channels take.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Writes refused with RESOURCE_EXHAUSTED by the rate limit so far (0 without one): how a
    /// test tells that a client kept within the budget.
    pub fn rate_limited(&self) -> u64 {
        self.limiter.as_ref().map_or(0, |l| l.refused())
    }

    /// Stops accepting requests, ends open streams, flushes `--data`, then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.store.end_subscriptions();
        match (&mut self.task).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "devnode server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "devnode server task failed"),
            Ok(Ok(())) => {}
        }
        self.store.close().await;
    }

    /// Waits for the server to end by itself (it only does on a transport error).
    async fn wait(&mut self) -> Result<(), DevNodeError> {
        match (&mut self.task).await {
            Ok(r) => r.map_err(DevNodeError::from),
            Err(e) => {
                tracing::error!(error = %e, "devnode server task failed");
                Ok(())
            }
        }
    }
}

/// Runs a node until Ctrl-C / SIGTERM (what `herald devnode` calls).
pub async fn run(args: DevNodeArgs) -> Result<(), DevNodeError> {
    let mut handle = DevNode::start(args.try_into()?).await?;
    println!(
        "herald devnode: XMTP v3 API and d14n gateway/node at {}",
        handle.url()
    );
    tokio::select! {
        r = handle.wait() => return r,
        _ = shutdown_signal() => tracing::info!("shutting down devnode"),
    }
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: DevNodeArgs,
    }

    #[test]
    fn args_default_to_the_sdk_local_port_in_memory() {
        let config: DevNodeConfig = Cli::parse_from(["devnode"]).node.try_into().unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 5556)));
        assert!(config.data_dir.is_none() && config.rate_limit.is_none());
        let cli = Cli::parse_from([
            "devnode",
            "--listen",
            "0.0.0.0:7000",
            "--data",
            "d",
            "--rate-limit",
        ]);
        let config: DevNodeConfig = cli.node.try_into().unwrap();
        assert_eq!(config.data_dir, Some(PathBuf::from("d")));
        assert_eq!(
            config.rate_limit.map(|r| (r.burst, r.per_minute)),
            Some((3_000, 600))
        );
    }
}
