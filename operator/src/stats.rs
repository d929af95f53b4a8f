//! Reads a Locust master's statistics over its web port.
//!
//! Two endpoints are used, both served by every Locust 2.x master:
//! - `GET <base>/stats/requests` (JSON): the run's `state`, `user_count`, the
//!   connected workers (`worker_count`, or the length of `workers` in older
//!   versions), `total_rps`, `fail_ratio` and one row per request name plus an
//!   `Aggregated` row with the totals. Percentile keys differ by version:
//!   2.2x rows carry `median_response_time`, `ninetieth_response_time` and
//!   `ninety_ninth_response_time`; newer rows carry `median_response_time` and
//!   `response_time_percentile_<q>` (0.95 and 0.99 by default).
//! - `GET <base>/stats/requests/csv`: the same table with the full percentile
//!   set (50 %, 66 %, ..., 90 %, 95 %, 99 %, ..., 100 %) and the whole-run
//!   `Requests/s`. The operator reads it once, for the final result, so p90 is
//!   known on every version.
//!
//! Nothing is ever guessed: a field a version does not report stays `None`
//! (never 0), and response times of a run without requests are `None`.
//!
//! The HTTP client is a deliberately small HTTP/1.0 `GET` over a plain TCP
//! connection (no keep-alive, no chunking, bounded size and time): the master's
//! web port is plain HTTP on the pod network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::condition_reason;
use crate::api::status::{LiveStats, TestResult};

/// Default time limit of one HTTP request to the master.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest response body accepted from the master.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Name of the totals row in Locust's statistics.
pub const AGGREGATED: &str = "Aggregated";
/// Locust's state once a run has ended (the master may still be up, see `--autoquit`).
pub const STATE_STOPPED: &str = "stopped";

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The TCP connection to the master failed.
    #[error("cannot connect to the Locust master at {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed.
    #[error("reading {path} from the Locust master at {addr}: {source}")]
    Io {
        /// Address tried.
        addr: SocketAddr,
        /// Request path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The master did not answer in time.
    #[error("the Locust master at {addr} did not answer {path} within {timeout:?}")]
    Timeout {
        /// Address tried.
        addr: SocketAddr,
        /// Request path.
        path: String,
        /// The limit.
        timeout: Duration,
    },
    /// The answer was not a well-formed HTTP response.
    #[error("malformed HTTP response to {path}: {detail}")]
    Malformed {
        /// Request path.
        path: String,
        /// What was wrong.
        detail: &'static str,
    },
    /// The master answered with a non-2xx status.
    #[error("the Locust master answered {path} with HTTP {status}")]
    Status {
        /// Request path.
        path: String,
        /// HTTP status code.
        status: u16,
    },
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("the answer to {path} exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge {
        /// Request path.
        path: String,
    },
    /// The JSON statistics could not be decoded.
    #[error("cannot decode the statistics JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON statistics do not have the expected shape.
    #[error("unexpected statistics JSON: {0}")]
    Shape(&'static str),
    /// The CSV statistics could not be decoded.
    #[error("cannot decode the statistics CSV: {0}")]
    Csv(&'static str),
}

impl StatsError {
    /// CamelCase reason for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            StatsError::Connect { .. } | StatsError::Io { .. } | StatsError::Timeout { .. } => {
                condition_reason::MASTER_UNREACHABLE
            }
            StatsError::Malformed { .. }
            | StatsError::Status { .. }
            | StatsError::TooLarge { .. } => condition_reason::MASTER_BAD_RESPONSE,
            StatsError::Json(_) | StatsError::Shape(_) | StatsError::Csv(_) => {
                condition_reason::STATS_UNDECODABLE
            }
        }
    }
}

/// One row of the statistics table (a request name, or the `Aggregated` totals).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowStats {
    /// Requests sent.
    pub num_requests: Option<i64>,
    /// Requests that failed.
    pub num_failures: Option<i64>,
    /// Mean response time, ms.
    pub avg_response_time: Option<f64>,
    /// Fastest response, ms.
    pub min_response_time: Option<f64>,
    /// Slowest response, ms.
    pub max_response_time: Option<f64>,
    /// Requests per second over the whole run (newer versions only in JSON; always in CSV).
    pub total_rps: Option<f64>,
    /// Response-time percentiles in ms, keyed by quantile (`"0.5"`, `"0.9"`, `"0.95"`, `"0.99"`, ...).
    pub percentiles: BTreeMap<String, f64>,
}

impl RowStats {
    /// The percentile for quantile `q` (e.g. `"0.95"`), if reported.
    pub fn percentile(&self, q: &str) -> Option<f64> {
        self.percentiles.get(q).copied()
    }
}

/// What `/stats/requests` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MasterStats {
    /// Locust's state of the run: `ready`, `spawning`, `running`, `stopping`, `stopped`, ...
    pub state: Option<String>,
    /// Users currently running.
    pub user_count: Option<i64>,
    /// Workers connected to the master.
    pub worker_count: Option<i64>,
    /// Locust's `total_rps`.
    pub total_rps: Option<f64>,
    /// Locust's `fail_ratio`.
    pub fail_ratio: Option<f64>,
    /// The `Aggregated` row.
    pub aggregated: Option<RowStats>,
}

impl MasterStats {
    /// True once the run has ended (`state == "stopped"`).
    pub fn is_stopped(&self) -> bool {
        self.state.as_deref() == Some(STATE_STOPPED)
    }

    /// The live numbers written to `status.live`. Response times only once a
    /// request was made (Locust reports 0 before that, which is no measurement).
    pub fn live(&self) -> LiveStats {
        let row = self.aggregated.as_ref();
        let total_requests = row.and_then(|a| a.num_requests);
        let timed = row.filter(|_| total_requests.is_some_and(|t| t > 0));
        LiveStats {
            current_users: self.user_count,
            requests_per_second: self.total_rps,
            fail_ratio: self.fail_ratio,
            total_requests,
            failed_requests: row.and_then(|a| a.num_failures),
            average_response_time: timed.and_then(|a| a.avg_response_time),
            median_response_time: timed.and_then(|a| a.percentile("0.5")),
            p95_response_time: timed.and_then(|a| a.percentile("0.95")),
            p99_response_time: timed.and_then(|a| a.percentile("0.99")),
            max_response_time: timed.and_then(|a| a.max_response_time),
            state: self.state.clone(),
        }
    }
}

fn as_i64(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
            // Exact: an integral float below 2^53.
            .map(|f| f as i64)
    })
}

fn as_f64(v: Option<&Value>) -> Option<f64> {
    v?.as_f64().filter(|f| f.is_finite())
}

/// Normalizes a quantile written as `0.95`, `95%` or `99.9%` to `"0.95"` / `"0.999"`.
fn quantile_key(q: f64) -> Option<String> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Round to 6 decimals and drop trailing zeros: 0.5 -> "0.5", 0.999 -> "0.999", 1 -> "1".
    let s = format!("{q:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    Some(s.to_owned())
}

fn row_from_json(row: &serde_json::Map<String, Value>) -> RowStats {
    let mut percentiles = BTreeMap::new();
    let mut put = |q: f64, v: Option<f64>| {
        if let (Some(k), Some(v)) = (quantile_key(q), v) {
            percentiles.insert(k, v);
        }
    };
    put(0.5, as_f64(row.get("median_response_time")));
    put(0.9, as_f64(row.get("ninetieth_response_time")));
    put(0.99, as_f64(row.get("ninety_ninth_response_time")));
    for (key, value) in row {
        if let Some(q) = key.strip_prefix("response_time_percentile_")
            && let Ok(q) = q.parse::<f64>()
        {
            put(q, as_f64(Some(value)));
        }
    }
    RowStats {
        num_requests: as_i64(row.get("num_requests")),
        num_failures: as_i64(row.get("num_failures")),
        avg_response_time: as_f64(row.get("avg_response_time")),
        min_response_time: as_f64(row.get("min_response_time")),
        max_response_time: as_f64(row.get("max_response_time")),
        total_rps: as_f64(row.get("total_rps")),
        percentiles,
    }
}

/// Parses the JSON of `/stats/requests`.
pub fn parse_requests_json(body: &[u8]) -> Result<MasterStats, StatsError> {
    let v: Value = serde_json::from_slice(body)?;
    let obj = v
        .as_object()
        .ok_or(StatsError::Shape("expected a JSON object at the top level"))?;
    let aggregated = obj
        .get("stats")
        .and_then(Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .filter_map(Value::as_object)
                .find(|r| r.get("name").and_then(Value::as_str) == Some(AGGREGATED))
        })
        .map(row_from_json);
    let worker_count = as_i64(obj.get("worker_count")).or_else(|| {
        obj.get("workers")
            .and_then(Value::as_array)
            .and_then(|w| i64::try_from(w.len()).ok())
    });
    Ok(MasterStats {
        state: obj.get("state").and_then(Value::as_str).map(str::to_owned),
        user_count: as_i64(obj.get("user_count")),
        worker_count,
        total_rps: as_f64(obj.get("total_rps")),
        fail_ratio: as_f64(obj.get("fail_ratio")),
        aggregated,
    })
}

/// Splits one CSV line (RFC 4180 quoting; no embedded newlines in Locust's names).
fn split_csv_line(line: &str) -> Result<Vec<String>, StatsError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err(StatsError::Csv("unclosed quote"));
    }
    out.push(cur);
    Ok(out)
}

/// Parses the `Aggregated` row of `/stats/requests/csv` (or `<prefix>_stats.csv`).
/// `Ok(None)` when the table has no such row.
pub fn parse_requests_csv(body: &str) -> Result<Option<RowStats>, StatsError> {
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv_line(lines.next().ok_or(StatsError::Csv("empty"))?)?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let name_col = col("Name").ok_or(StatsError::Csv("no Name column"))?;
    for line in lines {
        let fields = split_csv_line(line)?;
        if fields.get(name_col).map(String::as_str) != Some(AGGREGATED) {
            continue;
        }
        let num = |name: &str| -> Option<f64> {
            col(name)
                .and_then(|i| fields.get(i))
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|f| f.is_finite())
        };
        let int = |name: &str| -> Option<i64> {
            col(name)
                .and_then(|i| fields.get(i))
                .and_then(|s| s.trim().parse::<i64>().ok())
        };
        let mut percentiles = BTreeMap::new();
        for (i, h) in header.iter().enumerate() {
            let Some(pct) = h.strip_suffix('%') else {
                continue;
            };
            let (Ok(p), Some(v)) = (
                pct.parse::<f64>(),
                fields.get(i).and_then(|s| s.trim().parse::<f64>().ok()),
            ) else {
                continue;
            };
            if let Some(k) = quantile_key(p / 100.0)
                && v.is_finite()
            {
                percentiles.insert(k, v);
            }
        }
        return Ok(Some(RowStats {
            num_requests: int("Request Count"),
            num_failures: int("Failure Count"),
            avg_response_time: num("Average Response Time"),
            min_response_time: num("Min Response Time"),
            max_response_time: num("Max Response Time"),
            total_rps: num("Requests/s"),
            percentiles,
        }));
    }
    Ok(None)
}

/// The final result of a run from the last `/stats/requests` read and, when
/// available, the CSV table read at the same time (preferred for percentiles,
/// maximum and whole-run RPS, which it always carries). Response times are
/// `None` when no request was made.
pub fn final_result(stats: &MasterStats, csv: Option<&RowStats>) -> TestResult {
    let json = stats.aggregated.as_ref();
    let pick_i = |f: fn(&RowStats) -> Option<i64>| json.and_then(f).or_else(|| csv.and_then(f));
    let total_requests = pick_i(|r| r.num_requests);
    let failed_requests = pick_i(|r| r.num_failures);
    let fail_ratio = match (total_requests, failed_requests) {
        (Some(t), Some(f)) if t > 0 => Some(f as f64 / t as f64),
        (Some(0), _) => Some(0.0),
        _ => stats.fail_ratio,
    };
    let had_requests = total_requests.is_some_and(|t| t > 0);
    let csv_first = |f: &dyn Fn(&RowStats) -> Option<f64>| -> Option<f64> {
        if !had_requests {
            return None;
        }
        csv.and_then(f).or_else(|| json.and_then(f))
    };
    TestResult {
        total_requests,
        failed_requests,
        fail_ratio,
        average_response_time: csv_first(&|r| r.avg_response_time),
        median_response_time: csv_first(&|r| r.percentile("0.5")),
        p90_response_time: csv_first(&|r| r.percentile("0.9")),
        p95_response_time: csv_first(&|r| r.percentile("0.95")),
        p99_response_time: csv_first(&|r| r.percentile("0.99")),
        max_response_time: csv_first(&|r| r.max_response_time),
        requests_per_second: if total_requests.is_some() {
            csv.and_then(|r| r.total_rps)
                .or_else(|| json.and_then(|r| r.total_rps))
        } else {
            None
        },
        state: stats.state.clone(),
    }
}

/// Path of a REST endpoint under the web base path (`""` or `/prefix`).
pub fn endpoint(base_path: &str, path: &str) -> String {
    format!("{}{path}", base_path.trim_end_matches('/'))
}

/// `GET http://addr<path>` with HTTP/1.0 (the server closes the connection),
/// everything bounded by `timeout`. Returns the body of a 2xx answer.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Vec<u8>, StatsError> {
    match tokio::time::timeout(timeout, http_get_inner(addr, path)).await {
        Ok(r) => r,
        Err(_) => Err(StatsError::Timeout {
            addr,
            path: path.to_owned(),
            timeout,
        }),
    }
}

async fn http_get_inner(addr: SocketAddr, path: &str) -> Result<Vec<u8>, StatsError> {
    let io = |source| StatsError::Io {
        addr,
        path: path.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|source| StatsError::Connect { addr, source })?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\nUser-Agent: locust-k8s-operator\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            break;
        }
        if buf.len() + n > MAX_RESPONSE_BYTES {
            return Err(StatsError::TooLarge {
                path: path.to_owned(),
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    split_response(&buf, path)
}

fn split_response(buf: &[u8], path: &str) -> Result<Vec<u8>, StatsError> {
    let malformed = |detail| StatsError::Malformed {
        path: path.to_owned(),
        detail,
    };
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| malformed("headers not UTF-8"))?;
    let status_line = head.lines().next().ok_or_else(|| malformed("empty"))?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed("not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed("no status code"))?;
    if !(200..300).contains(&status) {
        return Err(StatsError::Status {
            path: path.to_owned(),
            status,
        });
    }
    let chunked = head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        // HTTP/1.0 requests must not get chunked answers; refuse rather than misread.
        return Err(malformed("chunked answer to an HTTP/1.0 request"));
    }
    Ok(buf[end + 4..].to_vec())
}

/// Reads `/stats/requests` from the master at `addr` under `base_path`.
pub async fn read_stats(
    addr: SocketAddr,
    base_path: &str,
    timeout: Duration,
) -> Result<MasterStats, StatsError> {
    let body = http_get(addr, &endpoint(base_path, "/stats/requests"), timeout).await?;
    parse_requests_json(&body)
}

/// Reads the `Aggregated` row of `/stats/requests/csv`.
pub async fn read_stats_csv(
    addr: SocketAddr,
    base_path: &str,
    timeout: Duration,
) -> Result<Option<RowStats>, StatsError> {
    let body = http_get(addr, &endpoint(base_path, "/stats/requests/csv"), timeout).await?;
    let text = String::from_utf8(body).map_err(|_| StatsError::Csv("not UTF-8"))?;
    parse_requests_csv(&text)
}

/// One read of the master: the JSON always, plus the CSV table and the final
/// result once the run has stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// What `/stats/requests` said.
    pub stats: MasterStats,
    /// The final result, set when `stats` says the run has stopped.
    pub final_result: Option<TestResult>,
}

/// Reads the master; when the run has stopped, also reads the CSV table and
/// computes the final result (from the JSON alone if the CSV read fails).
pub async fn read_master(
    addr: SocketAddr,
    base_path: &str,
    timeout: Duration,
) -> Result<Reading, StatsError> {
    let stats = read_stats(addr, base_path, timeout).await?;
    let final_result = if stats.is_stopped() {
        let csv = read_stats_csv(addr, base_path, timeout)
            .await
            .ok()
            .flatten();
        Some(final_result(&stats, csv.as_ref()))
    } else {
        None
    };
    Ok(Reading {
        stats,
        final_result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_keys() {
        assert_eq!(quantile_key(0.5).as_deref(), Some("0.5"));
        assert_eq!(quantile_key(0.95).as_deref(), Some("0.95"));
        assert_eq!(quantile_key(99.9 / 100.0).as_deref(), Some("0.999"));
        assert_eq!(quantile_key(1.0).as_deref(), Some("1"));
        assert_eq!(quantile_key(1.5), None);
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            split_csv_line(r#"GET,"/a,b ""x""",3"#).unwrap(),
            vec!["GET", r#"/a,b "x""#, "3"]
        );
        assert!(split_csv_line(r#"GET,"/a"#).is_err());
    }

    #[test]
    fn http_response_split() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}";
        assert_eq!(split_response(ok, "/x").unwrap(), b"{}");
        let e = split_response(b"HTTP/1.1 404 NOT FOUND\r\n\r\nno", "/x").unwrap_err();
        assert!(matches!(e, StatsError::Status { status: 404, .. }));
        assert_eq!(e.reason(), "MasterBadResponse");
        assert!(split_response(b"garbage", "/x").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(split_response(chunked, "/x").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("", "/stats/requests"), "/stats/requests");
        assert_eq!(
            endpoint("/locust/", "/stats/requests"),
            "/locust/stats/requests"
        );
    }
}
