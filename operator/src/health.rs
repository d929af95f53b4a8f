//! Plain-HTTP probe and metrics endpoints.
//!
//! - the health address serves `GET /healthz` (200 while the process runs)
//!   and `GET /readyz` (200 only while [`Readiness::is_ready`], else 503 with
//!   a short plain-text reason such as `waiting for caches`);
//! - the metrics address serves `GET /metrics` ([`Metrics::encode`]).
//!
//! Each server listens only on the address it is given. Port 0 is allowed:
//! [`bind_health`] and [`bind_metrics`] return the bound address together with
//! the future that serves it. Bodies are never read; only `GET` and `HEAD` are
//! answered (anything else is 405), unknown paths are 404.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

/// Longest time a client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once by each plain-HTTP server.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest wait for open connections to finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors of the health and metrics servers.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

impl HealthError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            HealthError::Bind { .. } => "BindFailed",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ApiserverState {
    NeverReached,
    Reachable,
    UnreachableSince(Instant),
}

#[derive(Debug)]
struct ReadinessInner {
    webhooks_enabled: bool,
    caches_synced: AtomicBool,
    webhook_ready: AtomicBool,
    apiserver: Mutex<ApiserverState>,
}

/// Whether the operator is ready to serve, shared between the controller (which
/// sets it) and the `/readyz` handler (which reads it). Cloning is cheap and
/// every clone sees the same state.
///
/// Ready means: informer caches synced, the API server reachable, and — only
/// when webhooks are enabled — the webhook listener up. Everything starts
/// not ready.
#[derive(Debug, Clone)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

impl Readiness {
    /// A new readiness state, all parts not ready. With `webhooks_enabled`
    /// false the webhook part is not required.
    pub fn new(webhooks_enabled: bool) -> Self {
        Self {
            inner: Arc::new(ReadinessInner {
                webhooks_enabled,
                caches_synced: AtomicBool::new(false),
                webhook_ready: AtomicBool::new(false),
                apiserver: Mutex::new(ApiserverState::NeverReached),
            }),
        }
    }

    /// Records whether the controller's caches have synced.
    pub fn set_caches_synced(&self, synced: bool) {
        self.inner.caches_synced.store(synced, Ordering::SeqCst);
    }

    /// Records whether the last call to the API server succeeded. The first
    /// failure after a success starts the "unreachable since" clock; further
    /// failures keep it.
    pub fn set_apiserver_ok(&self, ok: bool) {
        let mut state = self
            .inner
            .apiserver
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *state = match (ok, *state) {
            (true, _) => ApiserverState::Reachable,
            (false, ApiserverState::UnreachableSince(since)) => {
                ApiserverState::UnreachableSince(since)
            }
            (false, _) => ApiserverState::UnreachableSince(Instant::now()),
        };
    }

    /// Records whether the webhook listener is up and serving.
    pub fn set_webhook_ready(&self, ready: bool) {
        self.inner.webhook_ready.store(ready, Ordering::SeqCst);
    }

    /// Whether webhooks are part of readiness.
    pub fn webhooks_enabled(&self) -> bool {
        self.inner.webhooks_enabled
    }

    /// True when every required part is ready.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reasons().is_empty()
    }

    /// Short reasons why the operator is not ready, in a fixed order; empty
    /// when ready.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.inner.caches_synced.load(Ordering::SeqCst) {
            reasons.push("waiting for caches".to_owned());
        }
        let apiserver = *self
            .inner
            .apiserver
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match apiserver {
            ApiserverState::Reachable => {}
            ApiserverState::NeverReached => reasons.push("apiserver not reached yet".to_owned()),
            ApiserverState::UnreachableSince(since) => reasons.push(format!(
                "apiserver unreachable since {}s",
                since.elapsed().as_secs()
            )),
        }
        if self.inner.webhooks_enabled && !self.inner.webhook_ready.load(Ordering::SeqCst) {
            reasons.push("webhook server not listening".to_owned());
        }
        reasons
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Answers everything that is not a `GET`/`HEAD` of a known path; `None`
/// when the request should be served.
fn reject(req: &Request<Incoming>, paths: &[&str]) -> Option<Response<Full<Bytes>>> {
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

/// The `/healthz` and `/readyz` handler.
pub fn health_response(req: &Request<Incoming>, readiness: &Readiness) -> Response<Full<Bytes>> {
    if let Some(resp) = reject(req, &["/healthz", "/readyz"]) {
        return resp;
    }
    if req.uri().path() == "/healthz" {
        return text_response(StatusCode::OK, "ok\n");
    }
    let reasons = readiness.not_ready_reasons();
    if reasons.is_empty() {
        text_response(StatusCode::OK, "ok\n")
    } else {
        text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", reasons.join("; ")),
        )
    }
}

fn metrics_response(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if let Some(resp) = reject(req, &["/metrics"]) {
        return resp;
    }
    let mut resp = text_response(StatusCode::OK, metrics.encode());
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    resp
}

async fn bind_listener(addr: SocketAddr) -> Result<(SocketAddr, TcpListener), HealthError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HealthError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HealthError::Bind { addr, source })?;
    Ok((local, listener))
}

/// Serves `handler` over plain HTTP/1.1 on `listener` until `shutdown`
/// completes, then waits up to [`SHUTDOWN_GRACE`] for open connections.
async fn serve_plain<H>(
    name: &'static str,
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HealthError>
where
    H: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        info!(server = name, %addr, "listening (plain HTTP)");
    }
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE or a connection reset before accept: back off briefly.
                    warn!(server = name, error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = Arc::clone(&handler);
        let service = service_fn(move |req: Request<Incoming>| {
            let resp = handler(&req);
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(err) = watched.await {
                debug!(server = name, %peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    info!(server = name, "shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            server = name,
            "connections still open after the shutdown grace period"
        );
    }
    Ok(())
}

/// Binds the health server on `addr` (port 0 allowed) and returns the bound
/// address and the future serving `/healthz` and `/readyz` until `shutdown`.
pub async fn bind_health(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<
    (
        SocketAddr,
        impl Future<Output = Result<(), HealthError>> + Send + 'static,
    ),
    HealthError,
> {
    let (local, listener) = bind_listener(addr).await?;
    let handler = move |req: &Request<Incoming>| health_response(req, &readiness);
    Ok((local, serve_plain("health", listener, handler, shutdown)))
}

/// Serves `/healthz` and `/readyz` on `addr` until `shutdown` completes.
pub async fn serve_health(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HealthError> {
    let (_, serving) = bind_health(addr, readiness, shutdown).await?;
    serving.await
}

/// Binds the metrics server on `addr` (port 0 allowed) and returns the bound
/// address and the future serving `/metrics` until `shutdown`.
pub async fn bind_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<
    (
        SocketAddr,
        impl Future<Output = Result<(), HealthError>> + Send + 'static,
    ),
    HealthError,
> {
    let (local, listener) = bind_listener(addr).await?;
    let handler = move |req: &Request<Incoming>| metrics_response(req, &metrics);
    Ok((local, serve_plain("metrics", listener, handler, shutdown)))
}

/// Serves `/metrics` on `addr` until `shutdown` completes.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HealthError> {
    let (_, serving) = bind_metrics(addr, metrics, shutdown).await?;
    serving.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_requires_every_part() {
        let r = Readiness::new(true);
        assert!(!r.is_ready());
        assert_eq!(
            r.not_ready_reasons(),
            vec![
                "waiting for caches",
                "apiserver not reached yet",
                "webhook server not listening"
            ]
        );
        r.set_caches_synced(true);
        r.set_apiserver_ok(true);
        assert_eq!(r.not_ready_reasons(), vec!["webhook server not listening"]);
        let shared = r.clone();
        shared.set_webhook_ready(true);
        assert!(r.is_ready());
    }

    #[test]
    fn webhook_part_ignored_when_disabled() {
        let r = Readiness::new(false);
        r.set_caches_synced(true);
        r.set_apiserver_ok(true);
        assert!(r.is_ready());
        assert!(!r.webhooks_enabled());
    }

    #[test]
    fn apiserver_outage_keeps_first_failure_time() {
        let r = Readiness::new(false);
        r.set_caches_synced(true);
        r.set_apiserver_ok(true);
        r.set_apiserver_ok(false);
        let first = *r.inner.apiserver.lock().unwrap();
        r.set_apiserver_ok(false);
        let second = *r.inner.apiserver.lock().unwrap();
        match (first, second) {
            (ApiserverState::UnreachableSince(a), ApiserverState::UnreachableSince(b)) => {
                assert_eq!(a, b)
            }
            other => panic!("unexpected states {other:?}"),
        }
        let reasons = r.not_ready_reasons();
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("apiserver unreachable since "),
            "{reasons:?}"
        );
        assert!(reasons[0].ends_with('s'));
        r.set_apiserver_ok(true);
        assert!(r.is_ready());
    }

    #[test]
    fn bind_error_has_reason() {
        let err = HealthError::Bind {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::other("x"),
        };
        assert_eq!(err.reason(), "BindFailed");
    }
}
