//! Per-test metrics (`locust_test_*`), computed at scrape time from the
//! LocustTests in the operator's watch cache. Their `status` holds what the
//! operator read from each test's master (the live numbers while the run is
//! under way, the result after it), so these metrics need no sidecar, no
//! extra request to the master and no memory of their own: a scrape encodes
//! what the cache holds, in `(namespace, name)` order.
//!
//! Nothing is guessed: a number the master did not report (or that the test
//! does not have yet) has no series, rather than a zero. A test's series
//! disappear when it is deleted, and [`FINISHED_TEST_RETENTION`] after it
//! finished, so the series count is bounded by the tests that exist and ran
//! lately. Every family carries the labels `namespace` and `name`.
//!
//! | metric | type | extra labels | while |
//! |---|---|---|---|
//! | `locust_test_phase` | gauge (1 for the current phase, else 0) | `phase` | always |
//! | `locust_test_workers_expected` | gauge | | always |
//! | `locust_test_workers_connected` | gauge | | reported |
//! | `locust_test_start_time_seconds` | gauge (Unix time) | | started |
//! | `locust_test_completion_time_seconds` | gauge (Unix time) | | finished |
//! | `locust_test_users` | gauge | | running |
//! | `locust_test_requests_per_second` | gauge | | running |
//! | `locust_test_fail_ratio` | gauge (0–1) | | running |
//! | `locust_test_requests_total` | counter | | running |
//! | `locust_test_request_failures_total` | counter | | running |
//! | `locust_test_response_time_average_seconds` | gauge | | running |
//! | `locust_test_response_time_max_seconds` | gauge | | running |
//! | `locust_test_response_time_seconds` | gauge | `quantile` (0.5, 0.95, 0.99) | running |
//! | `locust_test_result_requests` | gauge | | finished |
//! | `locust_test_result_failures` | gauge | | finished |
//! | `locust_test_result_fail_ratio` | gauge | | finished |
//! | `locust_test_result_requests_per_second` | gauge | | finished |
//! | `locust_test_result_response_time_average_seconds` | gauge | | finished |
//! | `locust_test_result_response_time_max_seconds` | gauge | | finished |
//! | `locust_test_result_response_time_seconds` | gauge | `quantile` (0.5, 0.9, 0.95, 0.99) | finished |
//!
//! "running" means the phase is `Running` and the master's statistics were
//! read; "finished" means `Succeeded` or `Failed`.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::api::status::LiveStats;
use crate::api::{LocustTest, LocustTestStatus, Phase, TestResult};

/// How long a finished test's series stay after its completion time: long
/// enough for a scrape every few minutes to catch the result.
pub const FINISHED_TEST_RETENTION: Duration = Duration::from_secs(15 * 60);

/// Where the collector gets the tests from: the controller's cache while
/// this replica leads, nothing otherwise.
type Source = Arc<dyn Fn() -> Vec<Arc<LocustTest>> + Send + Sync>;

/// The `locust_test_*` collector. Clones share the source.
#[derive(Clone, Default)]
pub struct TestMetrics {
    source: Arc<RwLock<Option<Source>>>,
}

impl fmt::Debug for TestMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self
            .source
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("TestMetrics").field("source", &set).finish()
    }
}

impl TestMetrics {
    /// Reports the tests `source` returns on each scrape, until
    /// [`TestMetrics::clear`].
    pub fn set_source(&self, source: impl Fn() -> Vec<Arc<LocustTest>> + Send + Sync + 'static) {
        *self.source.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(source));
    }

    /// Reports no test (this replica stopped reconciling).
    pub fn clear(&self) {
        *self.source.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn tests(&self) -> Vec<Arc<LocustTest>> {
        let source = self
            .source
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        source.map(|s| s()).unwrap_or_default()
    }
}

impl Collector for TestMetrics {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let samples = samples(&self.tests(), Timestamp::now(), FINISHED_TEST_RETENTION);
        encode(&samples, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TestLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    name: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    namespace: String,
    name: String,
    quantile: &'static str,
}

/// What one test contributes to a scrape.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    labels: TestLabels,
    phase: Phase,
    expected_workers: Option<i32>,
    connected_workers: Option<i32>,
    start_time: Option<f64>,
    completion_time: Option<f64>,
    live: Option<LiveStats>,
    result: Option<TestResult>,
}

/// The tests to report, sorted: every test but those finished more than
/// `retention` before `now`; the live numbers only while `Running`, the
/// result only once finished.
fn samples(tests: &[Arc<LocustTest>], now: Timestamp, retention: Duration) -> Vec<Sample> {
    let retention = SignedDuration::try_from(retention).unwrap_or(SignedDuration::MAX);
    let mut out: Vec<Sample> = tests
        .iter()
        .filter_map(|t| {
            let status = t.status.clone().unwrap_or_default();
            let phase = status.phase.unwrap_or(Phase::Pending);
            let finished = phase.is_terminal();
            let completion = status.completion_time.as_ref().map(|c| c.0);
            if finished && completion.is_some_and(|c| now.duration_since(c) > retention) {
                return None;
            }
            let LocustTestStatus {
                expected_workers,
                connected_workers,
                start_time,
                live,
                result,
                ..
            } = status;
            Some(Sample {
                labels: TestLabels {
                    namespace: t.namespace().unwrap_or_default(),
                    name: t.name_any(),
                },
                phase,
                expected_workers: expected_workers.or(Some(t.spec.worker.replicas)),
                connected_workers,
                start_time: start_time.map(|s| unix_seconds(s.0)),
                completion_time: completion.map(unix_seconds),
                live: live.filter(|_| phase == Phase::Running),
                result: result.filter(|_| finished),
            })
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn unix_seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// A number of a series: counts are written as integers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Count(i64),
    Real(f64),
}

/// One family, written only when it has a series.
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    (name, help, ty): (&str, &str, MetricType),
    series: Vec<(L, Num)>,
) -> Result<(), fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, ty)?;
    for (labels, value) in series {
        let metric = family.encode_family(&labels)?;
        match (ty, value) {
            (MetricType::Counter, Num::Count(n)) => {
                ConstCounter::new(u64::try_from(n).unwrap_or(0)).encode(metric)?;
            }
            (_, Num::Count(n)) => ConstGauge::new(n).encode(metric)?,
            (_, Num::Real(x)) => ConstGauge::new(x).encode(metric)?,
        }
    }
    Ok(())
}

/// What one family of one sample is.
type Value = fn(&Sample) -> Option<Num>;

/// A family with the `namespace` and `name` labels only.
type PerTest = (&'static str, &'static str, MetricType, Value);

/// A family with a `quantile` label: name, help, each quantile's value.
type Quantiles = (&'static str, &'static str, &'static [(&'static str, Value)]);

const GAUGE: MetricType = MetricType::Gauge;
const COUNTER: MetricType = MetricType::Counter;

fn count(n: Option<i64>) -> Option<Num> {
    n.map(Num::Count)
}

fn real(x: Option<f64>) -> Option<Num> {
    x.map(Num::Real)
}

/// Milliseconds as seconds.
fn ms(x: Option<f64>) -> Option<Num> {
    x.map(|ms| Num::Real(ms / 1000.0))
}

fn live(s: &Sample) -> Option<&LiveStats> {
    s.live.as_ref()
}

fn result(s: &Sample) -> Option<&TestResult> {
    s.result.as_ref()
}

/// The families with the `namespace` and `name` labels only, in order.
#[rustfmt::skip]
const PER_TEST: [PerTest; 15] = [
    ("locust_test_workers_expected", "Worker pods the test asked for", GAUGE, |s| count(s.expected_workers.map(i64::from))),
    ("locust_test_workers_connected", "Workers connected to the master, as last reported", GAUGE, |s| count(s.connected_workers.map(i64::from))),
    ("locust_test_start_time_seconds", "When the master pod started running (Unix time)", GAUGE, |s| real(s.start_time)),
    ("locust_test_completion_time_seconds", "When the test finished (Unix time)", GAUGE, |s| real(s.completion_time)),
    ("locust_test_users", "Users currently simulated, over all workers", GAUGE, |s| count(live(s)?.current_users)),
    ("locust_test_requests_per_second", "Current requests per second", GAUGE, |s| real(live(s)?.requests_per_second)),
    ("locust_test_fail_ratio", "Current share of failed requests (0 to 1)", GAUGE, |s| real(live(s)?.fail_ratio)),
    ("locust_test_requests", "Requests sent so far in the run", COUNTER, |s| count(live(s)?.total_requests)),
    ("locust_test_request_failures", "Requests failed so far in the run", COUNTER, |s| count(live(s)?.failed_requests)),
    ("locust_test_response_time_average_seconds", "Mean response time so far in the run", GAUGE, |s| ms(live(s)?.average_response_time)),
    ("locust_test_response_time_max_seconds", "Slowest response so far in the run", GAUGE, |s| ms(live(s)?.max_response_time)),
    ("locust_test_result_requests", "Requests sent over the whole run", GAUGE, |s| count(result(s)?.total_requests)),
    ("locust_test_result_failures", "Requests failed over the whole run", GAUGE, |s| count(result(s)?.failed_requests)),
    ("locust_test_result_fail_ratio", "Share of failed requests over the whole run (0 to 1)", GAUGE, |s| real(result(s)?.fail_ratio)),
    ("locust_test_result_requests_per_second", "Requests per second over the whole run", GAUGE, |s| real(result(s)?.requests_per_second)),
];

/// Families with the `namespace` and `name` labels only, written after the
/// quantiles of the run.
#[rustfmt::skip]
const PER_TEST_RESULT: [PerTest; 2] = [
    ("locust_test_result_response_time_average_seconds", "Mean response time over the whole run", GAUGE, |s| ms(result(s)?.average_response_time)),
    ("locust_test_result_response_time_max_seconds", "Slowest response over the whole run", GAUGE, |s| ms(result(s)?.max_response_time)),
];

/// The response-time quantile families: name, help, and each quantile's value.
#[rustfmt::skip]
const QUANTILES: [Quantiles; 2] = [
    ("locust_test_response_time_seconds", "Response time percentiles so far in the run", &[
        ("0.5", |s| ms(live(s)?.median_response_time)),
        ("0.95", |s| ms(live(s)?.p95_response_time)),
        ("0.99", |s| ms(live(s)?.p99_response_time)),
    ]),
    ("locust_test_result_response_time_seconds", "Response time percentiles over the whole run", &[
        ("0.5", |s| ms(result(s)?.median_response_time)),
        ("0.9", |s| ms(result(s)?.p90_response_time)),
        ("0.95", |s| ms(result(s)?.p95_response_time)),
        ("0.99", |s| ms(result(s)?.p99_response_time)),
    ]),
];

fn per_test(
    encoder: &mut DescriptorEncoder,
    samples: &[Sample],
    (name, help, ty, value): PerTest,
) -> Result<(), fmt::Error> {
    let series = samples
        .iter()
        .filter_map(|s| Some((s.labels.clone(), value(s)?)))
        .collect();
    family(encoder, (name, help, ty), series)
}

fn quantiles(
    encoder: &mut DescriptorEncoder,
    samples: &[Sample],
    (name, help, values): Quantiles,
) -> Result<(), fmt::Error> {
    let mut series = Vec::new();
    for s in samples {
        for (quantile, value) in values {
            if let Some(v) = value(s) {
                let labels = QuantileLabels {
                    namespace: s.labels.namespace.clone(),
                    name: s.labels.name.clone(),
                    quantile,
                };
                series.push((labels, v));
            }
        }
    }
    family(encoder, (name, help, GAUGE), series)
}

fn encode(samples: &[Sample], mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
    let e = &mut encoder;
    let phases = samples
        .iter()
        .flat_map(|s| {
            Phase::ALL.into_iter().map(|phase| {
                let labels = PhaseLabels {
                    namespace: s.labels.namespace.clone(),
                    name: s.labels.name.clone(),
                    phase: phase.as_str(),
                };
                (labels, Num::Count(i64::from(phase == s.phase)))
            })
        })
        .collect();
    family(
        e,
        (
            "locust_test_phase",
            "1 for the phase the LocustTest is in, 0 for the others",
            GAUGE,
        ),
        phases,
    )?;
    for spec in PER_TEST {
        per_test(e, samples, spec)?;
    }
    for spec in QUANTILES {
        quantiles(e, samples, spec)?;
    }
    for spec in PER_TEST_RESULT {
        per_test(e, samples, spec)?;
    }
    Ok(())
}

/// Every family name this module can write (counters without `_total`), for
/// docs and dashboard checks.
pub fn families() -> Vec<&'static str> {
    let mut out = vec!["locust_test_phase"];
    out.extend(PER_TEST.iter().map(|f| f.0));
    out.extend(QUANTILES.iter().map(|f| f.0));
    out.extend(PER_TEST_RESULT.iter().map(|f| f.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use prometheus_client::registry::Registry;

    fn test(ns: &str, name: &str, status: Option<LocustTestStatus>) -> Arc<LocustTest> {
        let mut t: LocustTest = serde_json::from_value(serde_json::json!({
            "apiVersion": "locust.io/v2",
            "kind": "LocustTest",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"image": "locustio/locust:2.43.3", "master": {"command": "--locustfile /lotest/src/t.py"},
                     "worker": {"command": "--locustfile /lotest/src/t.py", "replicas": 3}}
        }))
        .unwrap_or_else(|e| panic!("test object: {e}"));
        t.status = status;
        Arc::new(t)
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// The exposition text of the collector over `tests` at `now`.
    fn scrape(tests: Vec<Arc<LocustTest>>) -> String {
        let metrics = TestMetrics::default();
        metrics.set_source(move || tests.clone());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        out
    }

    fn running() -> LocustTestStatus {
        LocustTestStatus {
            phase: Some(Phase::Running),
            expected_workers: Some(3),
            connected_workers: Some(2),
            start_time: Some(Time(at("2026-12-07T10:00:00Z"))),
            live: Some(LiveStats {
                current_users: Some(50),
                requests_per_second: Some(12.5),
                fail_ratio: Some(0.25),
                total_requests: Some(400),
                failed_requests: Some(100),
                average_response_time: Some(120.0),
                median_response_time: Some(100.0),
                p95_response_time: None,
                p99_response_time: Some(900.0),
                max_response_time: Some(1500.0),
                state: Some("running".into()),
            }),
            ..LocustTestStatus::default()
        }
    }

    /// Every line of `lines`, `{l}` replaced by `labels`, is a line of `text`.
    fn assert_series(text: &str, labels: &str, lines: &[&str]) {
        for line in lines {
            let line = line.replace("{l}", labels);
            assert!(
                text.lines().any(|x| x == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn a_running_test_reports_the_masters_numbers_and_nothing_it_did_not_report() {
        let text = scrape(vec![test("perf", "checkout", Some(running()))]);
        assert_series(
            &text,
            r#"{namespace="perf",name="checkout"}"#,
            &[
                "locust_test_users{l} 50",
                "locust_test_requests_per_second{l} 12.5",
                "locust_test_fail_ratio{l} 0.25",
                "locust_test_requests_total{l} 400",
                "locust_test_request_failures_total{l} 100",
                "locust_test_response_time_average_seconds{l} 0.12",
                "locust_test_response_time_max_seconds{l} 1.5",
                r#"locust_test_response_time_seconds{namespace="perf",name="checkout",quantile="0.5"} 0.1"#,
                r#"locust_test_response_time_seconds{namespace="perf",name="checkout",quantile="0.99"} 0.9"#,
                "locust_test_workers_expected{l} 3",
                "locust_test_workers_connected{l} 2",
                "locust_test_start_time_seconds{l} 1796637600.0",
                r#"locust_test_phase{namespace="perf",name="checkout",phase="Running"} 1"#,
                r#"locust_test_phase{namespace="perf",name="checkout",phase="Pending"} 0"#,
                "# TYPE locust_test_requests counter",
            ],
        );
        // p95 was not reported: no series, not a zero.
        assert!(!text.contains(r#"quantile="0.95""#), "{text}");
        // Nothing of a result while running.
        assert!(!text.contains("locust_test_result_"), "{text}");
        assert!(!text.contains("completion_time"), "{text}");
    }

    #[test]
    fn a_finished_test_reports_its_result_until_the_retention_ends() {
        let done = at("2026-12-07T10:05:00Z");
        let status = LocustTestStatus {
            phase: Some(Phase::Succeeded),
            completion_time: Some(Time(done)),
            result: Some(TestResult {
                total_requests: Some(1000),
                failed_requests: Some(0),
                fail_ratio: Some(0.0),
                p90_response_time: Some(250.0),
                requests_per_second: Some(33.3),
                ..TestResult::default()
            }),
            ..running()
        };
        let tests = vec![test("perf", "done", Some(status))];
        let kept = samples(
            &tests,
            done + SignedDuration::from_secs(60),
            FINISHED_TEST_RETENTION,
        );
        assert_eq!(kept.len(), 1);
        assert!(kept[0].live.is_none(), "live numbers go with the run");
        let late = done
            + SignedDuration::try_from(FINISHED_TEST_RETENTION).unwrap_or_default()
            + SignedDuration::from_secs(1);
        assert!(samples(&tests, late, FINISHED_TEST_RETENTION).is_empty());

        let mut encoder_input = String::new();
        let mut registry = Registry::default();
        #[derive(Debug)]
        struct Fixed(Vec<Sample>);
        impl Collector for Fixed {
            fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
                encode(&self.0, encoder)
            }
        }
        registry.register_collector(Box::new(Fixed(kept)));
        prometheus_client::encoding::text::encode(&mut encoder_input, &registry)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        let text = encoder_input;
        assert_series(
            &text,
            r#"{namespace="perf",name="done"}"#,
            &[
                "locust_test_result_requests{l} 1000",
                "locust_test_result_failures{l} 0",
                "locust_test_result_fail_ratio{l} 0.0",
                "locust_test_result_requests_per_second{l} 33.3",
                r#"locust_test_result_response_time_seconds{namespace="perf",name="done",quantile="0.9"} 0.25"#,
                "locust_test_completion_time_seconds{l} 1796637900.0",
                r#"locust_test_phase{namespace="perf",name="done",phase="Succeeded"} 1"#,
            ],
        );
        assert!(!text.contains("locust_test_users"), "{text}");
        assert!(!text.contains("result_response_time_average"), "{text}");
    }

    #[test]
    fn tests_are_reported_in_order_and_a_new_test_only_by_phase_and_workers() {
        let text = scrape(vec![
            test("b", "x", None),
            test("a", "y", Some(running())),
            test("a", "b", None),
        ]);
        let phases: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("locust_test_phase{") && l.ends_with(" 1"))
            .collect();
        assert_eq!(
            phases,
            [
                r#"locust_test_phase{namespace="a",name="b",phase="Pending"} 1"#,
                r#"locust_test_phase{namespace="a",name="y",phase="Running"} 1"#,
                r#"locust_test_phase{namespace="b",name="x",phase="Pending"} 1"#,
            ]
        );
        assert!(text.contains(r#"locust_test_workers_expected{namespace="b",name="x"} 3"#));
        assert!(!text.contains(r#"locust_test_workers_connected{namespace="b""#));
    }

    #[test]
    fn no_source_or_no_tests_means_no_series() {
        let metrics = TestMetrics::default();
        assert!(metrics.tests().is_empty());
        metrics.set_source(|| vec![test("a", "b", None)]);
        assert_eq!(metrics.tests().len(), 1);
        metrics.clear();
        assert!(metrics.tests().is_empty());
        assert_eq!(scrape(Vec::new()), "# EOF\n");
    }

    #[test]
    fn families_lists_every_family_written() {
        let done = LocustTestStatus {
            phase: Some(Phase::Failed),
            completion_time: Some(Time(Timestamp::now())),
            result: Some(TestResult {
                total_requests: Some(1),
                failed_requests: Some(1),
                fail_ratio: Some(1.0),
                average_response_time: Some(1.0),
                median_response_time: Some(1.0),
                p90_response_time: Some(1.0),
                p95_response_time: Some(1.0),
                p99_response_time: Some(1.0),
                max_response_time: Some(1.0),
                requests_per_second: Some(1.0),
                state: None,
            }),
            ..running()
        };
        let text = scrape(vec![
            test("a", "run", Some(running())),
            test("a", "done", Some(done)),
        ]);
        let written: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let listed: std::collections::BTreeSet<&str> = families().into_iter().collect();
        assert_eq!(written, listed);
    }
}
