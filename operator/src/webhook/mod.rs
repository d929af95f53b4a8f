//! The HTTPS webhook server: CRD conversion and validating admission for
//! `LocustTest`.
//!
//! - HTTPS only (rustls with ring; TLS 1.3 and 1.2; HTTP/1.1). A client that
//!   speaks plain HTTP or an older TLS version gets no HTTP answer.
//! - `POST /convert`: `ConversionReview` (apiextensions.k8s.io/v1), see
//!   [`handlers::convert_review`].
//! - `POST /validate-locust-io-v2-locusttest`: `AdmissionReview`
//!   (admission.k8s.io/v1), see [`handlers::admission_review`].
//! - Other paths 404, other methods 405, a non-JSON content type 415, a body
//!   over [`MAX_BODY_BYTES`] 413, a body that is not the expected review 400,
//!   a request not read and answered within [`REQUEST_TIMEOUT`] 408. Every
//!   error body is a JSON `metav1.Status`.
//! - Certificate: `tls.crt`/`tls.key` in [`WebhookConfig::cert_dir`]
//!   (default [`DEFAULT_CERT_DIR`], where OLM mounts them). At startup the
//!   server waits for a usable pair, polling every
//!   [`CERT_WAIT_POLL`] and logging every [`CERT_WAIT_LOG_EVERY`], for at most
//!   [`WebhookConfig::cert_wait_timeout`] (default [`DEFAULT_CERT_WAIT`],
//!   two minutes: long enough for OLM or cert-manager to mount a fresh
//!   secret, short enough that a missing secret shows up as a crash-looping
//!   pod rather than a silently unready one); then it fails with
//!   [`WebhookError::CertificateTimeout`]. While running, renewed files are
//!   picked up within [`tls::RELOAD_INTERVAL`] without a restart.
//! - Connections: served by the shared loop of [`crate::server`] within
//!   [`LIMITS`] (connection count, TLS handshake and header timeouts).
//! - Shutdown: when the `shutdown` future completes the listener closes, the
//!   readiness flag drops, and open connections get
//!   [`LIMITS`]`.shutdown_grace` to finish their current request.

pub mod certs;
pub mod handlers;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use kube::core::Status;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::server::{self, BindError, Limits};

use self::handlers::HandlerError;
use self::tls::{CertError, CertPaths, CertReloader, ReloadingCertResolver};

/// Path of the conversion webhook.
pub const CONVERT_PATH: &str = "/convert";
/// Path of the validating webhook for `locust.io/v2` `LocustTest`.
pub const VALIDATE_PATH: &str = "/validate-locust-io-v2-locusttest";
/// Name of the validating webhook (OLM's `generateName`), and of the
/// ValidatingWebhookConfiguration outside OLM.
pub const VALIDATING_WEBHOOK_NAME: &str = "vlocusttest.locust.io";
/// Metric label used for requests to any other path.
pub const OTHER_PATH_LABEL: &str = "other";
/// Where OLM (and controller-runtime) mount the serving certificate.
pub const DEFAULT_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs/";
/// Conventional webhook port.
pub const DEFAULT_PORT: u16 = 9443;
/// Default bound on the startup wait for the certificate files.
pub const DEFAULT_CERT_WAIT: Duration = Duration::from_secs(120);
/// How often the startup wait checks the certificate files.
pub const CERT_WAIT_POLL: Duration = Duration::from_millis(500);
/// How often the startup wait logs that it is still waiting.
pub const CERT_WAIT_LOG_EVERY: Duration = Duration::from_secs(10);
/// Largest request body accepted: an UPDATE review carries both the object
/// and the old object, each up to the API server's 3 MiB request limit
/// (controller-runtime uses the same 7 MiB bound).
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// After a body goes over the limit, at most this much more is read and
/// discarded so the 413 reaches the client before the connection closes.
pub const MAX_DRAIN_BYTES: usize = 1024 * 1024;
/// Time to read a request body and answer it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds of the webhook server: 128 connections (handshaking or open), 10 s
/// for the TLS handshake, 30 s for request headers (which also closes idle
/// keep-alive connections), 10 s of grace at shutdown.
pub const LIMITS: Limits = Limits {
    max_connections: 128,
    handshake_timeout: Duration::from_secs(10),
    header_read_timeout: Duration::from_secs(30),
    shutdown_grace: Duration::from_secs(10),
};

/// Errors that stop the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No usable certificate pair appeared in time.
    #[error("no usable serving certificate in {dir} after {waited:?}: {last}")]
    CertificateTimeout {
        /// The certificate directory.
        dir: PathBuf,
        /// How long the server waited.
        waited: Duration,
        /// The last problem seen.
        #[source]
        last: CertError,
    },
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(CertError),
    /// The listening socket could not be bound.
    #[error(transparent)]
    Bind(BindError),
}

impl WebhookError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::CertificateTimeout { .. } => "CertificateTimeout",
            WebhookError::Tls(_) => "TlsConfigFailed",
            WebhookError::Bind(err) => err.reason(),
        }
    }
}

/// Configuration of the webhook server.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Address to listen on (port 0 picks a free port, see [`WebhookServer::local_addr`]).
    pub bind: SocketAddr,
    /// Directory holding `tls.crt` and `tls.key`.
    pub cert_dir: PathBuf,
    /// Longest startup wait for a usable certificate pair.
    pub cert_wait_timeout: Duration,
    /// Readiness to mark webhook-ready while the listener serves.
    pub readiness: Option<Readiness>,
    /// Metrics to count requests in.
    pub metrics: Option<Metrics>,
}

impl WebhookConfig {
    /// A configuration with the default certificate wait, no readiness and no metrics.
    pub fn new(bind: SocketAddr, cert_dir: impl Into<PathBuf>) -> Self {
        Self {
            bind,
            cert_dir: cert_dir.into(),
            cert_wait_timeout: DEFAULT_CERT_WAIT,
            readiness: None,
            metrics: None,
        }
    }

    /// Sets the readiness the server reports to.
    #[must_use]
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Sets the metrics the server counts requests in.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sets the startup wait for the certificate.
    #[must_use]
    pub fn with_cert_wait_timeout(mut self, timeout: Duration) -> Self {
        self.cert_wait_timeout = timeout;
        self
    }
}

/// A webhook server with its certificate loaded and its socket bound, not yet
/// serving.
#[derive(Debug)]
pub struct WebhookServer {
    cfg: WebhookConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls_config: Arc<rustls::ServerConfig>,
    resolver: Arc<ReloadingCertResolver>,
    fingerprint: tls::Fingerprint,
}

/// Waits (bounded) until the pair in `paths` loads.
async fn wait_for_certificate(
    cfg: &WebhookConfig,
    paths: &CertPaths,
) -> Result<tls::LoadedCert, WebhookError> {
    let provider = tls::crypto_provider();
    let start = Instant::now();
    let mut last_log: Option<Instant> = None;
    loop {
        match tls::load(paths, &provider).await {
            Ok(loaded) => {
                info!(
                    cert_dir = %cfg.cert_dir.display(),
                    leaf_sha256 = %tls::leaf_sha256(&loaded.key),
                    "webhook serving certificate loaded"
                );
                return Ok(loaded);
            }
            Err(err) => {
                let waited = start.elapsed();
                if waited >= cfg.cert_wait_timeout {
                    return Err(WebhookError::CertificateTimeout {
                        dir: cfg.cert_dir.clone(),
                        waited,
                        last: err,
                    });
                }
                if last_log.is_none_or(|t| t.elapsed() >= CERT_WAIT_LOG_EVERY) {
                    info!(
                        cert_dir = %cfg.cert_dir.display(),
                        error = %err,
                        waited_secs = waited.as_secs(),
                        timeout_secs = cfg.cert_wait_timeout.as_secs(),
                        "waiting for the webhook serving certificate"
                    );
                    last_log = Some(Instant::now());
                }
                let remaining = cfg.cert_wait_timeout.saturating_sub(waited);
                tokio::time::sleep(CERT_WAIT_POLL.min(remaining)).await;
            }
        }
    }
}

impl WebhookServer {
    /// Waits for the certificate (see the module docs), builds the TLS
    /// configuration and binds the socket.
    pub async fn bind(cfg: WebhookConfig) -> Result<Self, WebhookError> {
        let paths = CertPaths::in_dir(&cfg.cert_dir);
        let loaded = wait_for_certificate(&cfg, &paths).await?;
        let resolver = Arc::new(ReloadingCertResolver::new(loaded.key));
        let tls_config =
            Arc::new(tls::server_config(Arc::clone(&resolver)).map_err(WebhookError::Tls)?);
        let (listener, local_addr) = server::bind(cfg.bind).await.map_err(|source| {
            WebhookError::Bind(BindError {
                addr: cfg.bind,
                source,
            })
        })?;
        Ok(Self {
            cfg,
            listener,
            local_addr,
            tls_config,
            resolver,
            fingerprint: loaded.fingerprint,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, reloading the certificate as it
    /// changes. Marks the readiness (if any) webhook-ready while serving.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebhookError> {
        let WebhookServer {
            cfg,
            listener,
            local_addr: _,
            tls_config,
            resolver,
            fingerprint,
        } = self;
        let paths = CertPaths::in_dir(&cfg.cert_dir);
        let reloader = CertReloader::new(paths, resolver, fingerprint);
        let _reload_task = AbortOnDrop(tokio::spawn(reloader.run(std::future::pending())));
        let ready_guard = ReadyGuard::new(cfg.readiness.clone());

        let acceptor = TlsAcceptor::from(tls_config);
        let state = Arc::new(State {
            metrics: cfg.metrics.clone(),
        });
        let handler = move |req: Request<Incoming>| {
            let state = Arc::clone(&state);
            async move { state.handle(req).await }
        };
        // Readiness drops as soon as shutdown is requested, before the grace
        // period for open connections.
        let shutdown = async move {
            shutdown.await;
            drop(ready_guard);
        };
        server::serve("webhook", listener, acceptor, LIMITS, handler, shutdown).await;
        Ok(())
    }
}

/// Waits for the certificate, binds `cfg.bind` and serves until `shutdown`
/// completes (returning `Ok` early if it completes during the certificate wait).
pub async fn serve(
    cfg: WebhookConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebhookError> {
    let mut shutdown = Box::pin(shutdown);
    let server = tokio::select! {
        server = WebhookServer::bind(cfg) => server?,
        _ = &mut shutdown => return Ok(()),
    };
    server.run(shutdown).await
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets webhook readiness while alive.
struct ReadyGuard(Option<Readiness>);

impl ReadyGuard {
    fn new(readiness: Option<Readiness>) -> Self {
        if let Some(r) = &readiness {
            r.set_webhook_ready(true);
        }
        Self(readiness)
    }
}

impl Drop for ReadyGuard {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            r.set_webhook_ready(false);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Convert,
    Validate,
}

struct State {
    metrics: Option<Metrics>,
}

/// An HTTP-level rejection, answered with a JSON `metav1.Status`.
struct HttpError {
    code: StatusCode,
    message: String,
    close: bool,
}

impl HttpError {
    fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            close: false,
        }
    }

    fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    fn status_reason(&self) -> &'static str {
        match self.code {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
            StatusCode::REQUEST_TIMEOUT => "Timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            _ => "InternalError",
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let status =
            Status::failure(&self.message, self.status_reason()).with_code(self.code.as_u16());
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": status.message,
            "reason": status.reason,
            "code": status.code,
        });
        let mut resp = json_response(self.code, body.to_string().into_bytes());
        if self.code == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        if self.close {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<HandlerError> for HttpError {
    fn from(err: HandlerError) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, err.to_string())
    }
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Reads at most `limit` bytes of `body`. Over the limit, up to
/// [`MAX_DRAIN_BYTES`] more are read and dropped before answering 413, so a
/// client that is still sending sees the answer rather than a reset.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
        .closing()
    };
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("reading request body: {err}"),
            )
            .closing()
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                let mut drained = buf.len() + data.len() - limit;
                while drained < MAX_DRAIN_BYTES {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            drained += frame.data_ref().map_or(0, |d| d.len());
                        }
                        _ => break,
                    }
                }
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

fn is_json(req: &Request<Incoming>) -> bool {
    match req.headers().get(CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json")),
    }
}

impl State {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let endpoint = match req.uri().path() {
            CONVERT_PATH => Some(Endpoint::Convert),
            VALIDATE_PATH => Some(Endpoint::Validate),
            _ => None,
        };
        let label = match endpoint {
            Some(Endpoint::Convert) => CONVERT_PATH,
            Some(Endpoint::Validate) => VALIDATE_PATH,
            None => OTHER_PATH_LABEL,
        };
        let result =
            match tokio::time::timeout(REQUEST_TIMEOUT, Self::dispatch(endpoint, req)).await {
                Ok(result) => result,
                Err(_) => Err(HttpError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request not completed in time",
                )
                .closing()),
            };
        if let Some(metrics) = &self.metrics {
            metrics.webhook_request(label, result.is_ok());
        }
        match result {
            Ok(resp) => resp,
            Err(err) => {
                debug!(path = label, code = err.code.as_u16(), message = %err.message, "webhook request rejected");
                err.into_response()
            }
        }
    }

    async fn dispatch(
        endpoint: Option<Endpoint>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, HttpError> {
        let Some(endpoint) = endpoint else {
            return Err(HttpError::new(StatusCode::NOT_FOUND, "unknown path"));
        };
        if req.method() != Method::POST {
            return Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {} not allowed", req.method()),
            ));
        }
        if !is_json(&req) {
            return Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content type must be application/json",
            ));
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            )
            .closing());
        }
        let body = read_body(req.into_body(), MAX_BODY_BYTES).await?;
        let encoded = match endpoint {
            Endpoint::Convert => serde_json::to_vec(&handlers::convert_review(&body)?),
            Endpoint::Validate => serde_json::to_vec(&handlers::admission_review(&body)?),
        };
        match encoded {
            Ok(bytes) => Ok(json_response(StatusCode::OK, bytes)),
            Err(err) => Err(HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding the response failed: {err}"),
            )),
        }
    }
}
