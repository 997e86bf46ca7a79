//! Why a connection failed, in words an operator can act on: [`ConnectProblem`] from the
//! socket and TLS errors, and the [`ProblemSlot`] a transport keeps the last one in.

use std::sync::{Arc, Mutex};

/// Why a connection to the node could not be opened, with the fix an operator should apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectProblem {
    /// The host name did not resolve.
    #[error("cannot resolve host {host}: {detail}")]
    Dns { host: String, detail: String },
    /// Nothing accepts connections at the address.
    #[error("connection refused by {addr}")]
    Refused { addr: String },
    /// TCP connect or the TLS handshake took longer than 10 s.
    #[error("timed out connecting to {addr}")]
    Timeout { addr: String },
    /// The server's certificate was not accepted.
    #[error("TLS certificate of {host} not accepted: {detail}")]
    Certificate { host: String, detail: String },
    /// An `https://` URL points at a port that does not speak TLS.
    #[error("{addr} does not speak TLS")]
    NotTls { addr: String },
    /// The TLS server did not agree to HTTP/2 (ALPN `h2`), which gRPC needs.
    #[error("{addr} did not negotiate HTTP/2 (ALPN h2) over TLS")]
    NoHttp2 { addr: String },
    /// Any other TLS failure.
    #[error("TLS handshake with {addr} failed: {detail}")]
    Tls { addr: String, detail: String },
    /// Any other I/O failure while connecting.
    #[error("cannot connect to {addr}: {detail}")]
    Io { addr: String, detail: String },
    /// A cleartext (`http://`) connection was dropped by the node at the transport level —
    /// what a TLS port does with an HTTP/2 preface, or a node that crashed.
    #[error("{addr} closed the cleartext HTTP/2 connection")]
    Dropped { addr: String },
}

impl ConnectProblem {
    /// A stable machine-readable name for the cause.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectProblem::Dns { .. } => "dns",
            ConnectProblem::Refused { .. } => "connection_refused",
            ConnectProblem::Timeout { .. } => "timeout",
            ConnectProblem::Certificate { .. } => "tls_certificate",
            ConnectProblem::NotTls { .. } => "not_tls",
            ConnectProblem::NoHttp2 { .. } => "no_http2",
            ConnectProblem::Tls { .. } => "tls",
            ConnectProblem::Io { .. } => "io",
            ConnectProblem::Dropped { .. } => "connection_dropped",
        }
    }

    /// What to change so that the connection works.
    pub fn fix(&self) -> &'static str {
        match self {
            ConnectProblem::Dns { .. } => {
                "check the host name in xmtp.network and this machine's DNS"
            }
            ConnectProblem::Refused { .. } => {
                "check the port in xmtp.network and that the node is running"
            }
            ConnectProblem::Timeout { .. } => {
                "check that the node is reachable from here (firewall, egress rules)"
            }
            ConnectProblem::Certificate { .. } => {
                "for a private node give its CA with xmtp.tls_ca_file (HERALD_XMTP_TLS_CA_FILE); \
                 check the URL's host matches the certificate"
            }
            ConnectProblem::NotTls { .. } => {
                "this port serves cleartext: use an http:// URL, or enable TLS on the node"
            }
            ConnectProblem::NoHttp2 { .. } => {
                "the server must offer HTTP/2 (ALPN h2); point xmtp.network at a gRPC endpoint"
            }
            ConnectProblem::Tls { .. } => {
                "check that the URL points at an XMTP gRPC endpoint over TLS"
            }
            ConnectProblem::Io { .. } => "check the address in xmtp.network",
            ConnectProblem::Dropped { .. } => {
                "if this port serves TLS, use an https:// URL (`herald doctor` tells); otherwise check the node"
            }
        }
    }

    /// Whether trying again later may succeed without a configuration change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectProblem::Dns { .. }
                | ConnectProblem::Refused { .. }
                | ConnectProblem::Timeout { .. }
                | ConnectProblem::Io { .. }
                | ConnectProblem::Dropped { .. }
        )
    }
}

/// The last connection failure of a transport (cleared by a successful connect).
#[derive(Debug, Clone, Default)]
pub struct ProblemSlot(Arc<Mutex<Option<ConnectProblem>>>, Option<Arc<str>>);

impl ProblemSlot {
    /// An empty slot; `cleartext` is the `host:port` of a cleartext transport.
    pub(super) fn new(cleartext: Option<Arc<str>>) -> Self {
        Self(Arc::default(), cleartext)
    }

    pub fn get(&self) -> Option<ConnectProblem> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `host:port` when the transport is cleartext.
    pub fn cleartext_addr(&self) -> Option<String> {
        self.1.as_deref().map(str::to_owned)
    }

    pub(super) fn set(&self, problem: Option<ConnectProblem>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }
}

pub(super) fn io_problem(host: &str, addr: String, e: std::io::Error) -> ConnectProblem {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => ConnectProblem::Refused { addr },
        ErrorKind::TimedOut => ConnectProblem::Timeout { addr },
        // tokio reports a failed lookup as an uncategorised error naming the resolver.
        _ if host.parse::<std::net::IpAddr>().is_err()
            && (e.to_string().contains("lookup") || e.to_string().contains("resolve")) =>
        {
            ConnectProblem::Dns {
                host: host.to_owned(),
                detail: e.to_string(),
            }
        }
        _ => ConnectProblem::Io {
            addr,
            detail: e.to_string(),
        },
    }
}

pub(super) fn tls_problem(host: &str, addr: String, e: std::io::Error) -> ConnectProblem {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => ConnectProblem::Certificate {
            host: host.to_owned(),
            detail: certificate_detail(c),
        },
        Some(rustls::Error::InvalidMessage(_))
        | Some(rustls::Error::InappropriateMessage { .. }) => ConnectProblem::NotTls { addr },
        Some(other) => ConnectProblem::Tls {
            addr,
            detail: other.to_string(),
        },
        // The peer closed the connection mid-handshake: a cleartext HTTP/2 server does that
        // after reading a ClientHello it cannot parse.
        None if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ) =>
        {
            ConnectProblem::NotTls { addr }
        }
        None => ConnectProblem::Tls {
            addr,
            detail: e.to_string(),
        },
    }
}

fn certificate_detail(c: &rustls::CertificateError) -> String {
    match c {
        rustls::CertificateError::UnknownIssuer => {
            "signed by an unknown certificate authority".into()
        }
        rustls::CertificateError::NotValidForName
        | rustls::CertificateError::NotValidForNameContext { .. } => {
            "not valid for this host name".into()
        }
        rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
            "expired".into()
        }
        other => format!("{other:?}"),
    }
}
