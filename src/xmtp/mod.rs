//! herald's side of XMTP: which network to talk to (possibly a node embedded in this process),
//! channel identities backed by herald's database, and the client state adapter.
//!
//! The protocol itself lives in `crates/xmtp-client`; this module only wires it to the service's
//! config, store and master key.

pub mod channel;
pub mod inbox;
pub mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use xmtp_client::{GrpcTransport, Transport};
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle};

/// `[xmtp]` settings (documented in `config.default.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmtpConfig {
    pub network: String,
    pub embedded_listen: SocketAddr,
    pub workers: usize,
    pub batch_size: usize,
    pub lease_secs: u64,
    pub max_attempts: i32,
    pub governor: GovernorMode,
    pub rate_burst: u32,
    pub rate_per_minute: u32,
    /// Whether workers read channel inboxes and answer chat commands.
    pub inbound: bool,
    /// Seconds between fallback reads of a channel's inbox (streams usually trigger sooner).
    pub inbound_poll_secs: u64,
    /// DM groups a process keeps decoded in memory (drains and kept clients together).
    pub resident_groups: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GovernorMode {
    Auto,
    On,
    Off,
}

/// Where a network name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    Embedded,
    Url(String),
}

impl Network {
    /// Parses `embedded`, `local`, `dev`, `production` or a URL.
    pub fn parse(name: &str) -> Network {
        match name.trim() {
            "embedded" => Network::Embedded,
            "local" => Network::Url("http://127.0.0.1:5556".into()),
            "dev" => Network::Url("https://grpc.dev.xmtp.network:443".into()),
            "production" => Network::Url("https://grpc.production.xmtp.network:443".into()),
            url => Network::Url(url.to_owned()),
        }
    }
}

/// The connected network: a shared transport plus, for `embedded`, the node it runs.
pub struct Xmtp {
    pub url: String,
    pub transport: Arc<dyn Transport>,
    pub config: XmtpConfig,
    /// The same connection as `transport`, for the node's server streams.
    pub grpc: GrpcTransport,
    node: tokio::sync::Mutex<Option<DevNodeHandle>>,
}

impl std::fmt::Debug for Xmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xmtp")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Xmtp {
    /// Starts the embedded node if configured, then a lazily connecting transport.
    pub async fn start(config: &XmtpConfig, data_dir: &Path) -> anyhow::Result<Arc<Xmtp>> {
        let (url, node) = match Network::parse(&config.network) {
            Network::Embedded => {
                let node = DevNode::start(DevNodeConfig {
                    listen: config.embedded_listen,
                    data_dir: Some(data_dir.join("xmtp-node")),
                    rate_limit: None,
                })
                .await?;
                (node.url(), Some(node))
            }
            Network::Url(url) => (url, None),
        };
        let grpc = GrpcTransport::connect_lazy(&url)?;
        let transport = Arc::new(grpc.clone());
        tracing::info!(xmtp.url = %url, embedded = node.is_some(), "XMTP network");
        Ok(Arc::new(Xmtp {
            url,
            transport,
            config: config.clone(),
            grpc,
            node: tokio::sync::Mutex::new(node),
        }))
    }

    /// Whether the per-channel rate governor runs.
    pub fn governor_on(&self) -> bool {
        match self.config.governor {
            GovernorMode::On => true,
            GovernorMode::Off => false,
            GovernorMode::Auto => Network::parse(&self.config.network) != Network::Embedded,
        }
    }

    /// Stops the embedded node (flushing its data), if any.
    pub async fn shutdown(&self) {
        if let Some(node) = self.node.lock().await.take() {
            node.shutdown().await;
        }
    }
}
