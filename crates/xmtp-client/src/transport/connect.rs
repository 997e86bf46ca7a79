//! Opening connections to a node: `http://` as cleartext HTTP/2 (h2c), `https://` over TLS
//! (rustls with aws-lc, ALPN `h2`, SNI = the URL's host), trusting the bundled Mozilla roots,
//! the platform's roots when it has any, and optional extra CA certificates (a private node's).
//!
//! The connector is our own rather than tonic's so that a failure keeps its cause: tonic turns
//! every connect error into a bare `UNAVAILABLE` string, while an operator needs to know whether
//! the certificate was refused, the port speaks cleartext, or nothing listens there, and what to
//! change. The last failure is kept in a [`ProblemSlot`] the transport reads when a call fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;

mod problem;

use problem::{io_problem, tls_problem};
pub use problem::{ConnectProblem, ProblemSlot};

/// How long TCP connect, and then the TLS handshake, may each take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Trust settings for `https://` endpoints.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates, PEM (e.g. `[xmtp] tls_ca_file`).
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_ca", &self.extra_ca_pem.is_some())
            .finish()
    }
}

/// Whether `url` is one a transport can use, and whether it needs TLS.
pub fn check_url(url: &str) -> Result<(Uri, bool), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(other) => {
            return Err(format!(
            "{url:?}: unsupported scheme {other:?} (use http:// for cleartext, https:// for TLS)"
        ))
        }
        None => {
            return Err(format!(
            "{url:?} has no scheme (use http://host:port for cleartext, https://host:port for TLS)"
        ))
        }
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok((uri, tls))
}

/// `host:port` of a URL that passed [`check_url`].
pub fn authority(url: &str) -> String {
    match check_url(url) {
        Ok((uri, tls)) => format!(
            "{}:{}",
            uri.host().unwrap_or_default(),
            uri.port_u16().unwrap_or(if tls { 443 } else { 80 })
        ),
        Err(_) => url.to_owned(),
    }
}

/// A stream a connector hands to hyper: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The tower connector tonic's channel uses (see the module docs).
#[derive(Clone)]
pub struct Connector {
    tls: Option<tokio_rustls::TlsConnector>,
    problems: ProblemSlot,
}

impl Connector {
    /// A connector for `url`'s scheme; `https` builds the TLS trust store now, so an unreadable
    /// extra CA fails here rather than on every call.
    pub fn new(url: &str, options: &TlsOptions) -> Result<Self, String> {
        let (_, tls) = check_url(url)?;
        let tls = if tls {
            Some(tokio_rustls::TlsConnector::from(Arc::new(client_config(
                options,
            )?)))
        } else {
            None
        };
        let cleartext = tls.is_none().then(|| Arc::from(authority(url)));
        Ok(Self {
            tls,
            problems: ProblemSlot::new(cleartext),
        })
    }

    /// The slot where this connector records its last failure.
    pub fn problems(&self) -> ProblemSlot {
        self.problems.clone()
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<Box<dyn Io>>, ConnectProblem> {
        let host = uri.host().unwrap_or_default().to_owned();
        // `[::1]` comes with brackets; connect and SNI want the bare address.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let addr = format!("{host}:{port}");
        let tcp =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((&*bare, port))).await {
                Err(_) => return Err(ConnectProblem::Timeout { addr }),
                Ok(Err(e)) => return Err(io_problem(&bare, addr, e)),
                Ok(Ok(tcp)) => tcp,
            };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = self.tls else {
            return Ok(TokioIo::new(Box::new(tcp)));
        };
        let name = ServerName::try_from(bare.clone()).map_err(|e| ConnectProblem::Tls {
            addr: addr.clone(),
            detail: format!("invalid server name {bare:?}: {e}"),
        })?;
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp)).await {
            Err(_) => return Err(ConnectProblem::Timeout { addr }),
            Ok(Err(e)) => return Err(tls_problem(&bare, addr, e)),
            Ok(Ok(stream)) => stream,
        };
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(ConnectProblem::NoHttp2 { addr });
        }
        Ok(TokioIo::new(Box::new(stream)))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Box<dyn Io>>;
    type Error = ConnectProblem;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let slot = this.problems.clone();
            let result = this.connect(uri).await;
            match &result {
                Ok(_) => slot.set(None),
                Err(p) => {
                    tracing::debug!(error = %p, fix = p.fix(), "XMTP node connection failed");
                    slot.set(Some(p.clone()));
                }
            }
            result
        })
    }
}

/// Opens one connection to `url` (TCP, then TLS with ALPN h2 for `https://`) and drops it:
/// what `herald doctor` checks before calling the API. Returns whether TLS was used.
pub async fn probe(url: &str, options: &TlsOptions) -> Result<bool, ConnectProblem> {
    let config_problem = |detail: String| ConnectProblem::Tls {
        addr: authority(url),
        detail,
    };
    let connector = Connector::new(url, options).map_err(config_problem)?;
    let (uri, tls) = check_url(url).map_err(config_problem)?;
    connector.connect(uri).await.map(|_| tls)
}

/// Whether the server behind a cleartext `http://host:port` URL speaks TLS instead (a TLS
/// handshake gets as far as the certificate, accepted or not).
pub async fn speaks_tls(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    match probe(&format!("https://{rest}"), &TlsOptions::default()).await {
        Ok(_) => true,
        Err(ConnectProblem::Certificate { .. }) | Err(ConnectProblem::NoHttp2 { .. }) => true,
        Err(_) => false,
    }
}

fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The platform's store adds private CAs an operator installed; a container without one
    // still has the bundled roots.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = &options.extra_ca_pem {
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("tls_ca_file: not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("tls_ca_file: unusable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("tls_ca_file holds no PEM certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_connecting() {
        assert_eq!(check_url("http://127.0.0.1:5556").map(|u| u.1), Ok(false));
        assert_eq!(
            check_url("https://grpc.dev.xmtp.network:443").map(|u| u.1),
            Ok(true)
        );
        assert!(check_url("grpc://x:1")
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(check_url("127.0.0.1:5556").is_err());
        assert!(check_url("bogus").unwrap_err().contains("scheme"));
    }

    #[test]
    fn a_bad_ca_file_is_refused_at_setup() {
        let options = TlsOptions {
            extra_ca_pem: Some(b"not a certificate".to_vec()),
        };
        let err = Connector::new("https://node.example:443", &options)
            .err()
            .expect("refused");
        assert!(err.contains("tls_ca_file"), "{err}");
        assert!(Connector::new("https://node.example:443", &TlsOptions::default()).is_ok());
    }

    #[test]
    fn configuration_problems_are_not_retried() {
        let addr = "h:1".to_string();
        assert!(!ConnectProblem::NotTls { addr: addr.clone() }.is_retryable());
        assert!(!ConnectProblem::Certificate {
            host: "h".into(),
            detail: "x".into()
        }
        .is_retryable());
        assert!(ConnectProblem::Refused { addr }.is_retryable());
    }
}
