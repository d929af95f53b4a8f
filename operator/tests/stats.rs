//! The stats reader against JSON/CSV captured from REAL Locust masters (2.47.0,
//! the pinned version, and 2.20.0, an older 2.x shape), and the thresholds.
//!
//! Fixtures: `tests/fixtures/stats-<version>-{running,stopped}.json` are
//! `/stats/requests` while the run was going and after it stopped;
//! `stats-<version>-stopped.csv` is `/stats/requests/csv` read right after the
//! stopped JSON. They were captured with curl from a master and two workers
//! loading a local target that fails half of the requests.

use std::net::SocketAddr;
use std::time::Duration;

use locust_operator::api::status::{LiveStats, TestResult};
use locust_operator::api::v2::ThresholdsSpec;
use locust_operator::stats::{self, MasterStats, StatsError};
use locust_operator::thresholds::{self, ThresholdError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn json(name: &str) -> MasterStats {
    stats::parse_requests_json(&fixture(name)).unwrap()
}

fn csv(name: &str) -> stats::RowStats {
    stats::parse_requests_csv(std::str::from_utf8(&fixture(name)).unwrap())
        .unwrap()
        .unwrap()
}

#[test]
fn running_2_47() {
    let s = json("stats-2.47.0-running.json");
    assert_eq!(s.state.as_deref(), Some("running"));
    assert!(!s.is_stopped());
    assert_eq!(s.user_count, Some(5));
    assert_eq!(s.worker_count, Some(2));
    assert_eq!(s.total_rps, Some(88.00544429422611));
    assert_eq!(s.fail_ratio, Some(0.5465116279069767));
    let a = s.aggregated.as_ref().unwrap();
    assert_eq!(a.num_requests, Some(258));
    assert_eq!(a.num_failures, Some(141));
    assert_eq!(a.percentile("0.5"), Some(3.0));
    assert_eq!(a.percentile("0.95"), Some(8.0));
    assert_eq!(a.percentile("0.99"), Some(11.0));
    // 2.47 rows carry no p90.
    assert_eq!(a.percentile("0.9"), None);
    assert_eq!(
        s.live(),
        LiveStats {
            current_users: Some(5),
            requests_per_second: Some(88.00544429422611),
            fail_ratio: Some(0.5465116279069767),
            total_requests: Some(258),
            failed_requests: Some(141),
            average_response_time: Some(3.9544385697671567),
            median_response_time: Some(3.0),
            p95_response_time: Some(8.0),
            p99_response_time: Some(11.0),
            max_response_time: Some(12.0),
            state: Some("running".into()),
        }
    );
}

#[test]
fn running_2_20_counts_workers_from_the_list() {
    let s = json("stats-2.20.0-running.json");
    assert_eq!(s.state.as_deref(), Some("running"));
    // 2.20 has no `worker_count`: the `workers` list is counted.
    assert_eq!(s.worker_count, Some(4));
    assert_eq!(s.user_count, Some(5));
    let a = s.aggregated.as_ref().unwrap();
    assert_eq!(a.num_requests, Some(135));
    assert_eq!(a.percentile("0.9"), Some(12.0));
    assert_eq!(a.percentile("0.99"), Some(31.0));
    // 2.20 rows carry no p95 and no whole-run RPS.
    assert_eq!(a.percentile("0.95"), None);
    assert_eq!(a.total_rps, None);
}

#[test]
fn final_result_2_47_with_csv() {
    let s = json("stats-2.47.0-stopped.json");
    assert!(s.is_stopped());
    let c = csv("stats-2.47.0-stopped.csv");
    assert_eq!(
        stats::final_result(&s, Some(&c)),
        TestResult {
            total_requests: Some(434),
            failed_requests: Some(226),
            fail_ratio: Some(226.0 / 434.0),
            average_response_time: Some(4.906562110598374),
            median_response_time: Some(3.0),
            p90_response_time: Some(8.0),
            p95_response_time: Some(10.0),
            p99_response_time: Some(47.0),
            max_response_time: Some(51.85264600004302),
            requests_per_second: Some(87.25387030620399),
            state: Some("stopped".into()),
        }
    );
}

#[test]
fn final_result_2_47_json_only_has_no_p90() {
    let r = stats::final_result(&json("stats-2.47.0-stopped.json"), None);
    assert_eq!(r.total_requests, Some(434));
    assert_eq!(r.p90_response_time, None);
    assert_eq!(r.p95_response_time, Some(10.0));
    assert_eq!(r.max_response_time, Some(52.0));
    assert_eq!(r.requests_per_second, Some(87.25387030620399));
}

#[test]
fn final_result_2_20_with_and_without_csv() {
    let s = json("stats-2.20.0-stopped.json");
    let only_json = stats::final_result(&s, None);
    assert_eq!(only_json.total_requests, Some(407));
    assert_eq!(only_json.p90_response_time, Some(9.0));
    assert_eq!(only_json.p99_response_time, Some(16.0));
    // Not reported by 2.20's JSON: left unknown, never 0 and never the current RPS.
    assert_eq!(only_json.p95_response_time, None);
    assert_eq!(only_json.requests_per_second, None);

    let r = stats::final_result(&s, Some(&csv("stats-2.20.0-stopped.csv")));
    assert_eq!(r.p95_response_time, Some(11.0));
    assert_eq!(r.p90_response_time, Some(9.0));
    assert_eq!(r.requests_per_second, Some(81.44552385476234));
    assert_eq!(r.fail_ratio, Some(218.0 / 407.0));
}

#[test]
fn missing_fields_are_none_not_zero() {
    let s = stats::parse_requests_json(br#"{"state":"running","stats":[]}"#).unwrap();
    assert_eq!(s.user_count, None);
    assert_eq!(s.worker_count, None);
    assert_eq!(s.total_rps, None);
    assert_eq!(s.aggregated, None);
    let r = stats::final_result(&s, None);
    assert_eq!(
        r,
        TestResult {
            state: Some("running".into()),
            ..TestResult::default()
        }
    );
    assert!(matches!(
        stats::parse_requests_json(b"[1]"),
        Err(StatsError::Shape(_))
    ));
    assert_eq!(
        stats::parse_requests_json(b"not json")
            .unwrap_err()
            .reason(),
        "StatsUndecodable"
    );
}

#[test]
fn no_requests_means_no_response_times() {
    let body = br#"{"state":"stopped","fail_ratio":0.0,"stats":[{"name":"Aggregated","num_requests":0,"num_failures":0,"avg_response_time":0.0,"max_response_time":0.0,"median_response_time":0,"response_time_percentile_0.95":0}]}"#;
    let r = stats::final_result(&stats::parse_requests_json(body).unwrap(), None);
    assert_eq!(r.total_requests, Some(0));
    assert_eq!(r.fail_ratio, Some(0.0));
    assert_eq!(r.average_response_time, None);
    assert_eq!(r.p95_response_time, None);
    assert_eq!(r.max_response_time, None);
}

fn result() -> TestResult {
    stats::final_result(
        &json("stats-2.47.0-stopped.json"),
        Some(&csv("stats-2.47.0-stopped.csv")),
    )
}

#[test]
fn thresholds_pass() {
    let t = decoded::<ThresholdsSpec>(json!({
        "maxFailRatio": 0.6,
        "maxP95ResponseTime": 10.0,
        "maxP99ResponseTime": 500.0,
        "minRequestsPerSecond": 10.0,
    }));
    assert_eq!(thresholds::evaluate(&t, &result()), Ok(()));
    assert!(thresholds::any_set(&t));
    assert!(!thresholds::any_set(&ThresholdsSpec::default()));
    assert_eq!(
        thresholds::evaluate(&ThresholdsSpec::default(), &TestResult::default()),
        Ok(())
    );
}

#[test]
fn thresholds_breach_lists_every_breach() {
    let t = decoded::<ThresholdsSpec>(json!({
        "maxFailRatio": 0.01,
        "maxP95ResponseTime": 5.0,
        "maxP50ResponseTime": 100.0,
        "minRequestsPerSecond": 1000.0,
    }));
    let err = thresholds::evaluate(&t, &result()).unwrap_err();
    assert_eq!(err.reason(), "ThresholdsBreached");
    assert_eq!(
        err.to_string(),
        "fail ratio 0.521 > 0.01; p95 response time 10 ms > 5 ms; requests per second 87.254 req/s < 1000 req/s"
    );
}

#[test]
fn thresholds_missing_numbers_fail() {
    let err = evaluate(json!({"maxP95ResponseTime": 500.0}), json!({})).unwrap_err();
    assert_eq!(err, ThresholdError::Unavailable(vec!["p95 response time"]));
    assert_eq!(err.reason(), "ResultsUnavailable");
    // A breach next to a missing number reports both.
    let err = evaluate(
        json!({"maxFailRatio": 0.0, "maxP90ResponseTime": 1.0}),
        json!({"failRatio": 0.5}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "fail ratio 0.5 > 0; no final value reported for p90 response time"
    );
}

#[test]
fn thresholds_boundaries_hold() {
    let verdict = evaluate(
        json!({"maxFailRatio": 0.5, "minRequestsPerSecond": 10.0}),
        json!({"failRatio": 0.5, "requestsPerSecond": 10.0}),
    );
    assert_eq!(verdict, Ok(()));
}

/// `value` (`spec.thresholds` or `status.result`, as the API shows it)
/// decoded; every key is a field (it encodes back the same).
fn decoded<T: serde::de::DeserializeOwned + serde::Serialize>(value: Value) -> T {
    let decoded: T = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&decoded).unwrap(), value);
    decoded
}

/// [`thresholds::evaluate`] of `spec.thresholds` and a `status.result` as
/// JSON (see [`decoded`]).
fn evaluate(thresholds: Value, result: Value) -> Result<(), ThresholdError> {
    thresholds::evaluate(&decoded(thresholds), &decoded(result))
}

/// A one-shot HTTP server on 127.0.0.1 answering `answer` to the first request.
async fn serve_once(answer: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = vec![0u8; 4096];
        let n = sock.read(&mut req).await.unwrap();
        sock.write_all(&answer).await.unwrap();
        sock.shutdown().await.unwrap();
        String::from_utf8_lossy(&req[..n]).into_owned()
    });
    (addr, handle)
}

#[tokio::test]
async fn reads_over_http_with_base_path() {
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec();
    answer.extend(fixture("stats-2.47.0-running.json"));
    let (addr, req) = serve_once(answer).await;
    let s = stats::read_stats(addr, "/locust", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(s.user_count, Some(5));
    let req = req.await.unwrap();
    assert!(
        req.starts_with("GET /locust/stats/requests HTTP/1.0\r\n"),
        "{req}"
    );
}

#[tokio::test]
async fn unreachable_master_is_an_error_not_a_number() {
    // Bind then drop: nothing listens on the port any more.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = stats::read_master(addr, "", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "MasterUnreachable");
    assert!(err.to_string().contains(&addr.to_string()));
}

#[tokio::test]
async fn silent_master_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (_sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let err = stats::read_stats(addr, "", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, StatsError::Timeout { .. }), "{err}");
    assert_eq!(err.reason(), "MasterUnreachable");
    hold.abort();
}

#[tokio::test]
async fn http_error_status_is_reported() {
    let (addr, _req) = serve_once(b"HTTP/1.1 404 NOT FOUND\r\n\r\nnope".to_vec()).await;
    let err = stats::read_stats(addr, "", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatsError::Status { status: 404, .. }),
        "{err}"
    );
}
