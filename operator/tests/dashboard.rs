//! The Grafana dashboard (`docs/grafana/locust-tests.json`) queries only
//! series the operator exports, and shows what docs/metrics.md promises:
//! users, requests per second, failures and percentiles per test, and the
//! operator's health.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use locust_operator::api::status::LiveStats;
use locust_operator::api::{LocustTest, LocustTestStatus, Phase, TestResult};
use locust_operator::metrics::Metrics;
use serde_json::{Value, json};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn test(name: &str, status: LocustTestStatus) -> Arc<LocustTest> {
    let mut t: LocustTest = serde_json::from_value(json!({
        "apiVersion": "locust.io/v2", "kind": "LocustTest",
        "metadata": {"name": name, "namespace": "perf"},
        "spec": {"image": "locustio/locust:2.43.3",
                 "master": {"command": "--locustfile /lotest/src/t.py"},
                 "worker": {"command": "--locustfile /lotest/src/t.py", "replicas": 2}}
    }))
    .expect("a valid LocustTest");
    t.status = Some(status);
    Arc::new(t)
}

/// Every sample name the operator writes, with a running and a finished
/// test whose statuses have every number.
fn exported() -> BTreeSet<String> {
    let times = || {
        (
            Some(100.0),
            Some(120.0),
            Some(300.0),
            Some(500.0),
            Some(900.0),
        )
    };
    let (avg, median, p95, p99, max) = times();
    let running = LocustTestStatus {
        phase: Some(Phase::Running),
        expected_workers: Some(2),
        connected_workers: Some(2),
        start_time: Some(Time(Timestamp::now())),
        live: Some(LiveStats {
            current_users: Some(10),
            requests_per_second: Some(5.0),
            fail_ratio: Some(0.1),
            total_requests: Some(100),
            failed_requests: Some(10),
            average_response_time: avg,
            median_response_time: median,
            p95_response_time: p95,
            p99_response_time: p99,
            max_response_time: max,
            state: Some("running".into()),
        }),
        ..LocustTestStatus::default()
    };
    let finished = LocustTestStatus {
        phase: Some(Phase::Succeeded),
        completion_time: Some(Time(Timestamp::now())),
        result: Some(TestResult {
            total_requests: Some(100),
            failed_requests: Some(0),
            fail_ratio: Some(0.0),
            average_response_time: avg,
            median_response_time: median,
            p90_response_time: Some(250.0),
            p95_response_time: p95,
            p99_response_time: p99,
            max_response_time: max,
            requests_per_second: Some(5.0),
            state: Some("stopped".into()),
        }),
        ..running.clone()
    };
    let tests = vec![test("run", running), test("done", finished)];
    let metrics = Metrics::new();
    metrics.tests_series().set_source(move || tests.clone());
    // Labelled families write a series only once one is counted, a
    // histogram its buckets only once observed.
    metrics.reconcile_started().finish();
    metrics.reconcile_error("CreateFailed");
    metrics.webhook_request("/convert", true);
    metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(e) = target["expr"].as_str() {
                out.push(e.to_owned());
            }
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = var["query"]["query"].as_str() {
            out.push(q.to_owned());
        }
    }
    out
}

/// The series names an expression selects (identifiers starting `locust_`).
fn names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("locust_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = start
            + expr[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len() - start);
        if boundary {
            out.push(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

#[test]
fn every_dashboard_query_names_an_exported_series() {
    let path = root().join("docs/grafana/locust-tests.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let exported = exported();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let found = names(expr);
        assert!(!found.is_empty(), "{expr:?} selects no locust_ series");
        for name in found {
            assert!(
                exported.contains(&name),
                "{expr:?} uses {name}, which the operator does not export; it exports {exported:#?}"
            );
            used.insert(name);
        }
    }
    // What the dashboard is for.
    for name in [
        "locust_test_users",
        "locust_test_requests_per_second",
        "locust_test_request_failures_total",
        "locust_test_response_time_seconds",
        "locust_test_workers_connected",
        "locust_test_phase",
        "locust_operator_reconciles_total",
        "locust_operator_reconcile_errors_total",
        "locust_operator_leader",
    ] {
        assert!(used.contains(name), "the dashboard does not show {name}");
    }
    // Every panel but the rows queries something.
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] != "row" {
            assert!(
                panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "panel {} has no query",
                panel["title"]
            );
        }
    }
}

#[test]
fn the_names_parser_finds_series_and_nothing_else() {
    assert_eq!(
        names("sum by (le) (rate(locust_operator_reconcile_duration_seconds_bucket[5m]))"),
        ["locust_operator_reconcile_duration_seconds_bucket"]
    );
    assert_eq!(
        names(r#"locust_test_users{name=~"$test"} / locust_test_workers_expected"#),
        ["locust_test_users", "locust_test_workers_expected"]
    );
    assert!(names("up{job=\"my_locust_thing\"}").is_empty());
}

#[test]
fn docs_list_every_exported_series() {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    for name in exported() {
        // Histogram parts are documented by the histogram's name.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| f.ends_with("_seconds"))
            .unwrap_or(&name);
        assert!(
            doc.contains(&format!("`{family}`")),
            "docs/metrics.md does not list `{family}`"
        );
    }
}
