//! The accept loop: HTTP/1.1 connections with a header-read timeout and a cap on how many are
//! open at once, so half-sent requests (slowloris) can neither hold sockets forever nor
//! exhaust the process's file descriptors; `/healthz` keeps answering.
//!
//! hyper answers a request it cannot parse (a garbage request line: 400, a target over its
//! 64 KiB limit: 414, too many or too large headers: 431) by itself, with an empty body.
//! [`JsonParseErrors`] wraps each connection's socket and swaps those automatic responses for
//! our `{code, detail}` JSON.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::error::raw_error_response;

/// How long to wait before accepting again after the listener failed (out of descriptors):
/// retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connection limits (`[http]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A client must send a request's complete header block within this time, also for
    /// each request after the first on a kept-alive connection; otherwise it is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` fires, then lets open connections finish
/// their current request and waits for them.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        // A slot first: while all are taken, new clients stay in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = serve_connection(stream, peer, router.clone(), limits, shutdown.clone());
        connections.spawn(async move {
            connection.await;
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    // Handlers may ask for the peer address as axum's `ConnectInfo`.
    let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let io = TokioIo::new(JsonParseErrors::new(stream));
    let connection = builder
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        }
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts, resets and unparseable requests are the client's business.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A socket whose writes are watched for hyper's automatic error responses (see the module
/// docs); everything else passes through unchanged.
pub struct JsonParseErrors<S> {
    inner: S,
    /// A replacement being written, and how many bytes of hyper's own response it stands for.
    replacing: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<S> JsonParseErrors<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// If `buf` is exactly one of hyper's automatic error responses, its status. hyper writes it
/// as a bare head with `content-length: 0` and no `content-type`; our own error responses
/// always carry a JSON body.
fn automatic_error(buf: &[u8]) -> Option<StatusCode> {
    let status = match buf.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let head = std::str::from_utf8(buf).ok()?.to_ascii_lowercase();
    let bare = head.ends_with("\r\n\r\n")
        && head.matches("\r\n\r\n").count() == 1
        && head.contains("\r\ncontent-length: 0\r\n")
        && !head.contains("\r\ncontent-type:");
    bare.then_some(status)
}

fn replacement_for(status: StatusCode) -> Vec<u8> {
    let detail = match status {
        StatusCode::URI_TOO_LONG => "the request target is longer than this server accepts",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request headers are larger or more numerous than this server accepts"
        }
        _ => "the request line or headers could not be parsed as HTTP/1.1",
    };
    raw_error_response(status, detail)
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match automatic_error(buf) {
                Some(status) => {
                    this.replacing = Some(Replacement {
                        bytes: replacement_for(status),
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let r = this.replacing.as_mut().expect("set above");
        while r.written < r.bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &r.bytes[r.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            r.written += n;
        }
        let stands_for = r.stands_for;
        this.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands over each response head in one buffer, which is what
    // `automatic_error` inspects.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bare_error_heads_are_replaced() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_error(bare), Some(StatusCode::BAD_REQUEST));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(ours), None);
        let with_body =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 400 x\r\n\r\n";
        assert_eq!(automatic_error(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(ok), None);
    }
}
