//! herald's side of XMTP: which network to talk to (possibly a node embedded in this process),
//! channel identities backed by herald's database, and the client state adapter.
//!
//! The protocol itself lives in `crates/xmtp-client`; this module only wires it to the service's
//! config, store and master key.

pub mod channel;
pub mod doctor;
pub mod inbox;
mod inproc;
pub mod installation;
pub mod network;
pub mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use xmtp_client::{
    D14nTransport, GatewayAuth, GrpcTransport, Subscriptions, TlsOptions, Transport,
};
use xmtp_devnode::{DevNode, DevNodeConfig, DevNodeHandle, TlsIdentity};

pub use network::{Network, NetworkError};

/// `[xmtp]` settings (documented in `config.default.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmtpConfig {
    pub network: String,
    /// d14n gateway (`PublishClientEnvelopes`, `GetNodes`); with a node URL as `network` it
    /// selects the decentralized network.
    #[serde(default)]
    pub gateway_url: Option<String>,
    /// Header carrying the gateway credential (libxmtp's default: `authorization`).
    #[serde(default = "authorization")]
    pub gateway_auth_header: String,
    /// The gateway credential, if the gateway wants one (a secret: never logged).
    #[serde(default)]
    pub gateway_auth_token: Option<SecretString>,
    /// Extra CA certificates (PEM) trusted for `https://` nodes, e.g. a private node's CA.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    pub embedded_listen: SocketAddr,
    /// Allow the embedded node with Postgres (a single-node development setup only).
    #[serde(default)]
    pub embedded_with_postgres: bool,
    /// Serve the embedded node over TLS with this certificate chain (PEM) ...
    #[serde(default)]
    pub embedded_tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[serde(default)]
    pub embedded_tls_key: Option<PathBuf>,
    /// herald calls its embedded node in-process (no gRPC hop) unless the node serves TLS or
    /// this is false.
    #[serde(default = "yes")]
    pub embedded_in_process: bool,
    pub workers: usize,
    pub batch_size: usize,
    pub lease_secs: u64,
    pub max_attempts: i32,
    pub governor: GovernorMode,
    pub rate_burst: u32,
    pub rate_per_minute: u32,
    /// The network's multiplier for an allowlisted egress IP (XMTP grants 4x writes).
    #[serde(default = "one")]
    pub rate_multiplier: u32,
    /// Share of the burst (percent) kept for channels with a critical delivery due.
    #[serde(default = "ten")]
    pub rate_reserve_percent: u32,
    /// Whether workers read channel inboxes and answer chat commands.
    pub inbound: bool,
    /// Seconds between fallback reads of a channel's inbox (streams usually trigger sooner).
    pub inbound_poll_secs: u64,
    /// Chat commands per minute one sender inbox may send one channel; 0 turns the limit off.
    pub inbound_commands_per_minute: u32,
    /// Chat commands one sender may send a channel at once.
    pub inbound_command_burst: u32,
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

fn authorization() -> String {
    "authorization".into()
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn ten() -> u32 {
    10
}

impl XmtpConfig {
    /// The network `network` and `gateway_url` name.
    pub fn resolve(&self) -> Result<Network, NetworkError> {
        Network::parse(&self.network, self.gateway_url.as_deref())
    }

    /// TLS trust settings for `https://` nodes (reads `tls_ca_file`).
    pub fn tls_options(&self) -> anyhow::Result<TlsOptions> {
        let extra_ca_pem = match &self.tls_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading xmtp.tls_ca_file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(TlsOptions { extra_ca_pem })
    }

    /// The URL a client dials for `network`: the embedded node's address (`embedded` means
    /// the node a local `herald serve` runs), the v3 node, or the d14n gateway.
    pub fn dial_url(&self, network: &Network) -> String {
        match network {
            Network::Embedded { .. } => {
                let scheme = if self.embedded_tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.embedded_listen)
            }
            Network::V3 { url } => url.clone(),
            Network::D14n { gateway, .. } => gateway.clone(),
        }
    }

    /// A lazily connecting transport to `url` speaking `network`'s API (v3 or d14n).
    pub fn transport(&self, network: &Network, url: &str) -> anyhow::Result<Arc<dyn Transport>> {
        let tls = self.tls_options()?;
        Ok(if network.is_d14n() {
            Arc::new(D14nTransport::connect_lazy_with(
                url,
                self.gateway_auth()?,
                &tls,
            )?)
        } else {
            Arc::new(GrpcTransport::connect_lazy_with(url, &tls)?)
        })
    }

    /// The gateway credential header, if a token is configured.
    pub fn gateway_auth(&self) -> anyhow::Result<GatewayAuth> {
        match &self.gateway_auth_token {
            None => Ok(GatewayAuth::default()),
            Some(token) => GatewayAuth::header(&self.gateway_auth_header, token.expose_secret())
                .context("xmtp.gateway_auth_header / gateway_auth_token"),
        }
    }

    /// The embedded node's TLS identity, when both `embedded_tls_*` files are set.
    fn embedded_tls(&self) -> anyhow::Result<Option<TlsIdentity>> {
        match (&self.embedded_tls_cert, &self.embedded_tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsIdentity::read(cert, key)?)),
            _ => anyhow::bail!(
                "xmtp.embedded_tls_cert and xmtp.embedded_tls_key must be set together"
            ),
        }
    }
}

/// The connected network: a shared transport plus, for `embedded`, the node it runs.
pub struct Xmtp {
    pub url: String,
    pub transport: Arc<dyn Transport>,
    pub config: XmtpConfig,
    /// The same connection as `transport`, for the node's server streams (v3
    /// `Subscribe*Messages`, or d14n `SubscribeEnvelopes`).
    pub streams: Arc<dyn Subscriptions>,
    /// Whether this is XMTP's decentralized network.
    pub d14n: bool,
    node: tokio::sync::Mutex<Option<DevNodeHandle>>,
    /// The last `herald doctor` report on this network, for `/readyz`.
    readiness: tokio::sync::Mutex<Option<(std::time::Instant, doctor::Report)>>,
}

/// How long `/readyz` reuses an XMTP report.
const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

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
        let tls = config.tls_options()?;
        let resolved = config.resolve()?;
        let (url, node, d14n) = match &resolved {
            Network::Embedded { d14n } => {
                let node = DevNode::start(DevNodeConfig {
                    listen: config.embedded_listen,
                    data_dir: Some(data_dir.join("xmtp-node")),
                    rate_limit: None,
                    tls: config.embedded_tls()?,
                })
                .await
                .map_err(|e| match e {
                    xmtp_devnode::DevNodeError::Bind { addr, source } => {
                        anyhow::anyhow!(crate::app::bind_message(
                            addr,
                            &source,
                            "xmtp.embedded_listen",
                            "HERALD_XMTP_EMBEDDED_LISTEN"
                        ))
                    }
                    other => anyhow::Error::new(other),
                })?;
                (node.url(), Some(node), *d14n)
            }
            Network::V3 { url } => (url.clone(), None, false),
            Network::D14n { gateway, .. } => (gateway.clone(), None, true),
        };
        let (transport, streams): (Arc<dyn Transport>, Arc<dyn Subscriptions>) = if d14n {
            let t = Arc::new(D14nTransport::connect_lazy_with(
                &url,
                config.gateway_auth()?,
                &tls,
            )?);
            (t.clone(), t)
        } else {
            let t = Arc::new(GrpcTransport::connect_lazy_with(&url, &tls)?);
            match &node {
                Some(n) if config.embedded_in_process && config.embedded_tls_cert.is_none() => {
                    (Arc::new(inproc::InProcessTransport::new(n.node())), t)
                }
                _ => (t.clone(), t),
            }
        };
        tracing::info!(xmtp.url = %url, xmtp.network = %resolved, embedded = node.is_some(), "XMTP network");
        Ok(Arc::new(Xmtp {
            url,
            transport,
            config: config.clone(),
            streams,
            d14n,
            node: tokio::sync::Mutex::new(node),
            readiness: tokio::sync::Mutex::new(None),
        }))
    }

    /// Whether the per-channel rate governor runs.
    pub fn governor_on(&self) -> bool {
        match self.config.governor {
            GovernorMode::On => true,
            GovernorMode::Off => false,
            GovernorMode::Auto => !matches!(self.config.resolve(), Ok(Network::Embedded { .. })),
        }
    }

    /// The doctor's checks of this process's network, run at most every 30 s (concurrent
    /// callers wait for one run).
    pub async fn readiness(&self) -> doctor::Report {
        let mut cached = self.readiness.lock().await;
        if let Some((at, report)) = cached.as_ref() {
            if at.elapsed() < READINESS_TTL {
                return report.clone();
            }
        }
        let report = match self.config.resolve() {
            Ok(resolved) => {
                let report = doctor::Report::new(&self.config.network);
                doctor::check_node(report, &resolved, &self.url, &self.config).await
            }
            Err(e) => {
                let mut report = doctor::Report::new(&self.config.network);
                report.ok = false;
                report.checks.push(doctor::Check {
                    name: "network",
                    ok: false,
                    detail: e.to_string(),
                    fix: None,
                });
                report
            }
        };
        if let Some(failed) = report.first_failure() {
            tracing::warn!(check = failed.name, detail = %failed.detail, fix = failed.fix.as_deref().unwrap_or(""), "XMTP network check failed");
        }
        metrics::gauge!("herald_xmtp_ready").set(if report.ok { 1.0 } else { 0.0 });
        *cached = Some((std::time::Instant::now(), report.clone()));
        report
    }

    /// Whether `address` (lowercase 0x hex) has an XMTP inbox on this network, i.e. whether a
    /// delivery to it could land rather than end `not_on_xmtp`. One `GetInboxIds` call.
    pub async fn has_inbox(&self, address: &str) -> Result<bool, xmtp_client::TransportError> {
        use xmtp_proto::identity_api::{get_inbox_ids_request, GetInboxIdsRequest};
        use xmtp_proto::xmtp::identity::associations::IdentifierKind;
        let req = GetInboxIdsRequest {
            requests: vec![get_inbox_ids_request::Request {
                identifier: address.to_ascii_lowercase(),
                identifier_kind: IdentifierKind::Ethereum as i32,
            }],
        };
        let resp = self.transport.get_inbox_ids(req).await?;
        Ok(resp.responses.iter().any(|r| r.inbox_id.is_some()))
    }

    /// Stops the embedded node (flushing its data), if any.
    pub async fn shutdown(&self) {
        if let Some(node) = self.node.lock().await.take() {
            node.shutdown().await;
        }
    }
}
