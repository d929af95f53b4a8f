//! The one HTTP/1.1 serving loop of the operator, shared by the plain-HTTP
//! health and metrics endpoints ([`crate::health`], [`crate::metrics`]) and
//! the HTTPS webhook server ([`crate::webhook`]).
//!
//! [`serve`] accepts TCP connections on a bound listener until its `shutdown`
//! future completes, and for each connection:
//! - holds one of [`Limits::max_connections`] permits for the whole life of
//!   the connection (handshake included), so a flood of clients queues in the
//!   kernel's backlog instead of growing memory;
//! - runs the [`Acceptor`] (nothing for [`Plain`] TCP; a TLS handshake for
//!   [`tokio_rustls::TlsAcceptor`]) bounded by [`Limits::handshake_timeout`];
//! - serves HTTP/1.1 with [`Limits::header_read_timeout`] for request headers
//!   (which also closes idle keep-alive connections).
//!
//! On shutdown the listener closes at once and open connections get
//! [`Limits::shutdown_grace`] to finish their current request.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// Pause after a failed `accept` (typically EMFILE, or a connection reset
/// before it was accepted) before trying again.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections (handshaking or open) at once.
    pub max_connections: usize,
    /// Time for a client to complete the [`Acceptor`]'s handshake.
    pub handshake_timeout: Duration,
    /// Time for a client to send request headers.
    pub header_read_timeout: Duration,
    /// Longest wait for open connections after shutdown is requested.
    pub shutdown_grace: Duration,
}

/// Bounds of the plain-HTTP servers (health and metrics): 64 connections,
/// 5 s for request headers, 5 s of grace at shutdown.
pub const PLAIN_HTTP_LIMITS: Limits = Limits {
    max_connections: 64,
    // Plain TCP has no handshake: this bound is never reached.
    handshake_timeout: Duration::from_secs(5),
    header_read_timeout: Duration::from_secs(5),
    shutdown_grace: Duration::from_secs(5),
};

/// Turns an accepted TCP connection into the stream HTTP is spoken over.
pub trait Acceptor: Clone + Send + Sync + 'static {
    /// The stream HTTP is served on.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Completes the connection's handshake, if any.
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// What the server speaks, for logs: `plain HTTP` or `HTTPS`.
    fn scheme(&self) -> &'static str;
}

/// Plain TCP: HTTP straight on the accepted connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Acceptor for Plain {
    type Stream = TcpStream;

    fn accept(&self, tcp: TcpStream) -> impl Future<Output = io::Result<TcpStream>> + Send {
        std::future::ready(Ok(tcp))
    }

    fn scheme(&self) -> &'static str {
        "plain HTTP"
    }
}

impl Acceptor for tokio_rustls::TlsAcceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    fn accept(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        tokio_rustls::TlsAcceptor::accept(self, tcp)
    }

    fn scheme(&self) -> &'static str {
        "HTTPS"
    }
}

/// A listening socket that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The socket error.
    #[source]
    pub source: io::Error,
}

impl BindError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        "BindFailed"
    }
}

/// Binds `addr` (port 0 allowed) and returns the listener with the address
/// actually bound.
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Binds `addr` (port 0 allowed) and returns the bound address and the future
/// serving `handler` over plain HTTP within [`PLAIN_HTTP_LIMITS`] until
/// `shutdown`. `name` labels the logs.
pub async fn bind_plain<H, F>(
    name: &'static str,
    addr: SocketAddr,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let (listener, local) = bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    Ok((
        local,
        serve(name, listener, Plain, PLAIN_HTTP_LIMITS, handler, shutdown),
    ))
}

/// Serves `handler` on `listener` through `acceptor` within `limits` until
/// `shutdown` completes (see the module docs). `name` labels the logs.
pub async fn serve<A, H, F>(
    name: &'static str,
    listener: TcpListener,
    acceptor: A,
    limits: Limits,
    handler: H,
    shutdown: impl Future<Output = ()> + Send,
) where
    A: Acceptor,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        info!(server = name, %addr, scheme = acceptor.scheme(), "listening");
    }
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    warn!(server = name, error = %err, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let handler = Arc::clone(&handler);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        debug!(server = name, %peer, error = %err, "handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(server = name, %peer, "handshake timed out");
                        return;
                    }
                };
            let service = service_fn(move |req: Request<Incoming>| {
                let response = handler(req);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(conn).await {
                debug!(server = name, %peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    info!(server = name, "shutting down");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            server = name,
            "connections still open after the shutdown grace period"
        );
    }
}

/// A `text/plain; charset=utf-8` response.
pub fn text_response(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// For the read-only plain-HTTP endpoints: answers 404 for a path not in
/// `paths` and 405 (with `Allow: GET, HEAD`) for another method; `None` when
/// the request should be served.
pub fn reject_unless_get<B>(req: &Request<B>, paths: &[&str]) -> Option<HttpResponse> {
    if !paths.contains(&req.uri().path()) {
        return Some(text_response(StatusCode::NOT_FOUND, "not found\n"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(resp);
    }
    None
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn request(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    #[test]
    fn reject_unless_get_answers_unknown_paths_and_methods() {
        let paths = ["/a", "/b"];
        assert!(reject_unless_get(&request(Method::GET, "/a"), &paths).is_none());
        assert!(reject_unless_get(&request(Method::HEAD, "/b"), &paths).is_none());
        let resp = reject_unless_get(&request(Method::GET, "/c"), &paths).unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = reject_unless_get(&request(Method::POST, "/a"), &paths).unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[ALLOW], "GET, HEAD");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    }

    #[test]
    fn bind_error_has_reason() {
        let err = BindError {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: io::Error::other("x"),
        };
        assert_eq!(err.reason(), "BindFailed");
        assert_eq!(err.to_string(), "cannot listen on 127.0.0.1:1: x");
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    /// A plain server answering `ok` within `limits`, and the sender that stops it.
    async fn start(
        limits: Limits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            "test",
            listener,
            Plain,
            limits,
            |_req| async { text_response(StatusCode::OK, "ok\n") },
            async {
                let _ = stop_rx.await;
            },
        ));
        (addr, stop_tx, server)
    }

    /// Stops the server [`start`] returned and waits (bounded) until it ended.
    async fn stop_and_join(
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<()>,
    ) {
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    async fn get(tcp: &mut TcpStream) -> String {
        tcp.write_all(GET).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    }

    const LIMITS: Limits = Limits {
        max_connections: 1,
        handshake_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
    };

    #[tokio::test]
    async fn shutdown_closes_the_listener() {
        let (addr, stop, server) = start(LIMITS).await;
        let answer = get(&mut TcpStream::connect(addr).await.unwrap()).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
        stop_and_join(stop, server).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn connections_over_the_limit_wait_and_silent_clients_are_closed() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(1500),
            ..LIMITS
        };
        let (addr, stop, server) = start(limits).await;
        // The one permit goes to a client that sends nothing.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A second client is not served while the first holds the permit...
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(GET).await.unwrap();
        let mut buf = [0u8; 64];
        assert!(
            tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf))
                .await
                .is_err(),
            "served over the connection limit"
        );
        // ...until the header timeout closes the silent one (no response).
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest))
            .await
            .unwrap();
        assert_eq!(closed.unwrap(), 0, "the silent client got an answer");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), second.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        stop_and_join(stop, server).await;
    }
}
