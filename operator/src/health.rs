//! Readiness of the operator and the plain-HTTP probe endpoints.
//!
//! The health address serves `GET /healthz` (200 while the process runs) and
//! `GET /readyz` (200 only while [`Readiness::is_ready`], else 503 with a
//! short plain-text reason such as `waiting for caches`). It listens only on
//! the address it is given; port 0 is allowed: [`bind_health`] returns the
//! bound address together with the future that serves it, on the shared
//! serving loop of [`crate::server`] within [`server::PLAIN_HTTP_LIMITS`]. Bodies are never
//! read; only `GET` and `HEAD` are answered (anything else is 405), unknown
//! paths are 404. The metrics endpoint is [`crate::metrics::bind_metrics`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::server::{self, BindError, HttpResponse, reject_unless_get, text_response};

/// Awaits `ready` (a fresh future each attempt) in short slices until it
/// resolves, and returns what it resolved to. A reflector store's readiness
/// signal wakes only its most recent waiter (a kube-runtime `Controller`
/// waits on its own store too), so one long await could miss the wake-up.
pub async fn poll_ready<F, Fut>(mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let slice = std::time::Duration::from_millis(25);
    loop {
        if let Ok(done) = tokio::time::timeout(slice, ready()).await {
            return done;
        }
    }
}

/// Liveness path: 200 while the process runs.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness path: 200 only while [`Readiness::is_ready`].
pub const READYZ_PATH: &str = "/readyz";

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

/// The `/healthz` and `/readyz` handler.
pub fn health_response<B>(req: &Request<B>, readiness: &Readiness) -> HttpResponse {
    if let Some(resp) = reject_unless_get(req, &[HEALTHZ_PATH, READYZ_PATH]) {
        return resp;
    }
    if req.uri().path() == HEALTHZ_PATH {
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

/// Binds the health server on `addr` (port 0 allowed) and returns the bound
/// address and the future serving `/healthz` and `/readyz` until `shutdown`.
pub async fn bind_health(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError> {
    let handler =
        move |req: Request<Incoming>| std::future::ready(health_response(&req, &readiness));
    server::bind_plain("health", addr, handler, shutdown).await
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

    /// Readiness with synced caches and a reached apiserver.
    fn synced(webhooks_enabled: bool) -> Readiness {
        let r = Readiness::new(webhooks_enabled);
        r.set_caches_synced(true);
        r.set_apiserver_ok(true);
        r
    }

    #[test]
    fn webhook_part_ignored_when_disabled() {
        let r = synced(false);
        assert!(r.is_ready());
    }

    #[test]
    fn apiserver_outage_keeps_first_failure_time() {
        let r = synced(false);
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
}
