//! Prometheus metrics of the operator, exposed in the OpenMetrics text format
//! at `GET /metrics` by [`bind_metrics`] on the shared serving loop of
//! [`crate::server`] within [`server::PLAIN_HTTP_LIMITS`]: over HTTPS with
//! each request authorized by the API server ([`Access::Secure`], the
//! default), or plain HTTP when asked ([`Access::Plain`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `locust_operator_reconciles_total` | counter | |
//! | `locust_operator_reconcile_errors_total` | counter | `reason` |
//! | `locust_operator_reconcile_duration_seconds` | histogram | |
//! | `locust_operator_tests` | gauge | `phase` (`Pending`, `Running`, `Succeeded`, `Failed`) |
//! | `locust_operator_webhook_requests_total` | counter | `path`, `result` (`success`, `error`) |
//! | `locust_operator_leader` | gauge | |
//! | `locust_operator_leader_transitions_total` | counter | |
//!
//! and the per-test `locust_test_*` series of [`crate::test_metrics`].
//!
//! Series are written in a deterministic order (labels sorted), so two scrapes
//! of the same state give the same text.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::api::Phase;
use crate::metrics_auth::{Authorizer, Decision};
use crate::server::{self, BindError, HttpResponse};
use crate::test_metrics::TestMetrics;

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// Content type of [`Metrics::encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the reconcile duration histogram buckets.
pub const RECONCILE_DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `result` label value of a webhook request that was answered normally.
pub const WEBHOOK_RESULT_SUCCESS: &str = "success";
/// `result` label value of a webhook request that was rejected at the HTTP level.
pub const WEBHOOK_RESULT_ERROR: &str = "error";

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct WebhookLabels {
    path: String,
    result: String,
}

/// A labelled metric family whose series are kept, and encoded, in label
/// order (prometheus-client's own `Family` iterates a `HashMap`).
#[derive(Debug)]
struct SortedFamily<S, M> {
    series: Arc<RwLock<BTreeMap<S, M>>>,
}

impl<S, M> Clone for SortedFamily<S, M> {
    fn clone(&self) -> Self {
        Self {
            series: Arc::clone(&self.series),
        }
    }
}

impl<S, M> Default for SortedFamily<S, M> {
    fn default() -> Self {
        Self {
            series: Arc::new(RwLock::new(BTreeMap::new())),
        }
    }
}

impl<S: Ord + Clone, M: Default + Clone> SortedFamily<S, M> {
    /// The series for `labels`, created at zero when new. Metric handles are
    /// shared (`Arc` inside), so the returned clone updates the family.
    fn get_or_create(&self, labels: &S) -> M {
        if let Some(m) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return m.clone();
        }
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels.clone())
            .or_default()
            .clone()
    }
}

impl<S, M: TypedMetric> TypedMetric for SortedFamily<S, M> {
    const TYPE: MetricType = M::TYPE;
}

impl<S, M> EncodeMetric for SortedFamily<S, M>
where
    S: EncodeLabelSet + std::fmt::Debug,
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        for (labels, metric) in series.iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

/// The operator's metrics. Cloning is cheap: every clone updates and encodes
/// the same registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Counter,
    reconcile_errors: SortedFamily<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    tests: SortedFamily<PhaseLabels, Gauge>,
    webhook_requests: SortedFamily<WebhookLabels, Counter>,
    leader: Gauge,
    leader_transitions: Counter,
    tests_series: TestMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every operator metric registered; the
    /// `locust_operator_tests` gauge starts at 0 for each phase.
    pub fn new() -> Self {
        let reconciles = Counter::default();
        let reconcile_errors = SortedFamily::<ReasonLabels, Counter>::default();
        let reconcile_duration = Histogram::new(RECONCILE_DURATION_BUCKETS);
        let tests = SortedFamily::<PhaseLabels, Gauge>::default();
        let webhook_requests = SortedFamily::<WebhookLabels, Counter>::default();
        let leader = Gauge::default();
        let leader_transitions = Counter::default();
        let tests_series = TestMetrics::default();

        let mut registry = Registry::default();
        // prometheus-client appends `_total` to counter names.
        registry.register(
            "locust_operator_reconciles",
            "Reconciliations of LocustTest objects started",
            reconciles.clone(),
        );
        registry.register(
            "locust_operator_reconcile_errors",
            "Reconciliations that ended in an error, by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "locust_operator_reconcile_duration_seconds",
            "Time taken by one reconciliation, in seconds",
            reconcile_duration.clone(),
        );
        registry.register(
            "locust_operator_tests",
            "LocustTest objects by lifecycle phase",
            tests.clone(),
        );
        registry.register(
            "locust_operator_webhook_requests",
            "Requests received by the webhook server, by path and result",
            webhook_requests.clone(),
        );
        registry.register(
            "locust_operator_leader",
            "1 while this replica holds the leader lease and reconciles, else 0",
            leader.clone(),
        );
        registry.register(
            "locust_operator_leader_transitions",
            "Times this replica acquired or lost the leader lease",
            leader_transitions.clone(),
        );
        registry.register_collector(Box::new(tests_series.clone()));

        let metrics = Self {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            tests,
            webhook_requests,
            leader,
            leader_transitions,
            tests_series,
        };
        metrics.set_tests_by_phase(&BTreeMap::new());
        metrics
    }

    /// Counts a reconciliation and starts timing it; the duration is recorded
    /// when the returned timer is finished or dropped.
    #[must_use = "the duration is recorded when the timer is dropped"]
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            histogram: Some(self.reconcile_duration.clone()),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconciliation; `reason` is a CamelCase error reason
    /// (an error's `reason()`), so the label set stays small.
    pub fn reconcile_error(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets the number of tests in each phase; phases missing from `counts`
    /// are set to 0.
    pub fn set_tests_by_phase(&self, counts: &BTreeMap<Phase, i64>) {
        for phase in Phase::ALL {
            let value = counts.get(&phase).copied().unwrap_or(0);
            self.tests
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().to_owned(),
                })
                .set(value);
        }
    }

    /// Counts a webhook request to `path` (one of the webhook's fixed paths,
    /// or a fixed placeholder for unknown ones) that succeeded (`ok`) or was
    /// rejected at the HTTP level.
    pub fn webhook_request(&self, path: &str, ok: bool) {
        let result = if ok {
            WEBHOOK_RESULT_SUCCESS
        } else {
            WEBHOOK_RESULT_ERROR
        };
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                path: path.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records that this replica acquired the leader lease.
    pub fn leader_acquired(&self) {
        self.leader.set(1);
        self.leader_transitions.inc();
    }

    /// Records that this replica lost the leader lease (it stopped reconciling).
    pub fn leader_lost(&self) {
        self.leader.set(0);
        self.leader_transitions.inc();
    }

    /// The per-test `locust_test_*` series ([`crate::test_metrics`]).
    pub fn tests_series(&self) -> &TestMetrics {
        &self.tests_series
    }

    /// The whole registry in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; keep the scrape well-formed anyway.
            tracing::error!(error = %err, "encoding metrics failed");
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }
}

/// Times one reconciliation; records the elapsed seconds into
/// `locust_operator_reconcile_duration_seconds` exactly once, on
/// [`ReconcileTimer::finish`] or on drop.
#[derive(Debug)]
pub struct ReconcileTimer {
    histogram: Option<Histogram>,
    start: Instant,
}

impl ReconcileTimer {
    /// Records the duration now and returns it in seconds.
    pub fn finish(mut self) -> f64 {
        self.record()
    }

    fn record(&mut self) -> f64 {
        let seconds = self.start.elapsed().as_secs_f64();
        if let Some(histogram) = self.histogram.take() {
            histogram.observe(seconds);
        }
        seconds
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        if self.histogram.is_some() {
            self.record();
        }
    }
}

/// The `/metrics` handler: `GET`/`HEAD` only, OpenMetrics text.
pub fn metrics_response<B>(req: &Request<B>, metrics: &Metrics) -> HttpResponse {
    if let Some(resp) = server::reject_unless_get(req, &[METRICS_PATH]) {
        return resp;
    }
    let mut resp = server::text_response(StatusCode::OK, metrics.encode());
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    resp
}

/// How `/metrics` is served.
#[derive(Clone)]
pub enum Access {
    /// Plain HTTP to anyone who can reach the port (`--metrics-secure=false`).
    Plain,
    /// HTTPS, each request's bearer token authenticated and authorized by
    /// the API server ([`crate::metrics_auth`]).
    Secure {
        tls: Arc<rustls::ServerConfig>,
        authorizer: Arc<Authorizer>,
    },
}

/// The answer to a request the authorizer did not allow (or could not check).
fn refused(decision: Result<Decision, crate::metrics_auth::ReviewError>) -> Option<HttpResponse> {
    match decision {
        Ok(Decision::Allowed) => None,
        Ok(Decision::Unauthenticated) => {
            let mut resp = server::text_response(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send a bearer token the API server accepts\n",
            );
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(resp)
        }
        Ok(Decision::Forbidden(user)) => Some(server::text_response(
            StatusCode::FORBIDDEN,
            format!("Forbidden: {user} may not get {METRICS_PATH}\n"),
        )),
        Err(err) => {
            tracing::warn!(error = %err, "cannot authorize a metrics request");
            Some(server::text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the token could not be reviewed\n",
            ))
        }
    }
}

/// Binds the metrics server on `addr` (port 0 allowed) and returns the bound
/// address and the future serving `/metrics` with `access` until `shutdown`.
pub async fn bind_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, Pin<Box<dyn Future<Output = ()> + Send>>), BindError> {
    match access {
        Access::Plain => {
            let handler =
                move |req: Request<Incoming>| std::future::ready(metrics_response(&req, &metrics));
            let (addr, fut) = server::bind_plain("metrics", addr, handler, shutdown).await?;
            Ok((addr, Box::pin(fut)))
        }
        Access::Secure { tls, authorizer } => {
            let (listener, local) = server::bind(addr)
                .await
                .map_err(|source| BindError { addr, source })?;
            let handler = move |req: Request<Incoming>| {
                let (metrics, authorizer) = (metrics.clone(), Arc::clone(&authorizer));
                async move {
                    // Wrong methods and paths are answered without a review.
                    if let Some(resp) = server::reject_unless_get(&req, &[METRICS_PATH]) {
                        return resp;
                    }
                    match refused(authorizer.check(req.headers()).await) {
                        Some(resp) => resp,
                        None => metrics_response(&req, &metrics),
                    }
                }
            };
            let fut = server::serve(
                "metrics",
                listener,
                tokio_rustls::TlsAcceptor::from(tls),
                server::PLAIN_HTTP_LIMITS,
                handler,
                shutdown,
            );
            Ok((local, Box::pin(fut)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// Asserts that the line starting with `prefix` holds `value`.
    #[track_caller]
    fn assert_value(text: &str, prefix: &str, value: &str) {
        assert_eq!(
            line_value(text, prefix).as_deref(),
            Some(value),
            "{prefix} in\n{text}"
        );
    }

    #[test]
    fn encodes_all_metric_names() {
        let m = Metrics::new();
        let text = m.encode();
        let families = [
            ("locust_operator_reconciles", "counter"),
            ("locust_operator_reconcile_errors", "counter"),
            ("locust_operator_reconcile_duration_seconds", "histogram"),
            ("locust_operator_tests", "gauge"),
            ("locust_operator_webhook_requests", "counter"),
        ];
        let missing: Vec<_> = families
            .iter()
            .filter(|(name, kind)| !text.contains(&format!("# TYPE {name} {kind}")))
            .collect();
        assert!(missing.is_empty(), "missing {missing:?} in\n{text}");
        assert!(text.ends_with("# EOF\n"));
        assert_value(&text, "locust_operator_reconciles_total", "0");
    }

    #[test]
    fn reconcile_timer_records_once() {
        let m = Metrics::new();
        let t = m.reconcile_started();
        let secs = t.finish();
        assert!(secs >= 0.0);
        {
            let _t = m.reconcile_started();
        }
        let text = m.encode();
        assert_value(&text, "locust_operator_reconciles_total", "2");
        assert_value(
            &text,
            "locust_operator_reconcile_duration_seconds_count",
            "2",
        );
    }

    #[test]
    fn labelled_series_are_sorted_and_counted() {
        let m = Metrics::new();
        m.reconcile_error("KubeError");
        m.reconcile_error("BuildFailed");
        m.reconcile_error("KubeError");
        m.webhook_request("/convert", true);
        m.webhook_request("/convert", false);
        let mut counts = BTreeMap::new();
        counts.insert(Phase::Running, 3);
        counts.insert(Phase::Failed, 1);
        m.set_tests_by_phase(&counts);

        let text = m.encode();
        assert_value(
            &text,
            "locust_operator_reconcile_errors_total{reason=\"KubeError\"}",
            "2",
        );
        let build = text.find("reason=\"BuildFailed\"").unwrap();
        let kube = text.find("reason=\"KubeError\"").unwrap();
        assert!(build < kube, "series not sorted:\n{text}");
        assert_value(&text, "locust_operator_tests{phase=\"Running\"}", "3");
        assert_value(&text, "locust_operator_tests{phase=\"Pending\"}", "0");
        assert_value(
            &text,
            "locust_operator_webhook_requests_total{path=\"/convert\",result=\"error\"}",
            "1",
        );
        // Same state, same text.
        assert_eq!(text, m.encode());
    }
}
