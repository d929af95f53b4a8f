//! Pass/fail thresholds, evaluated on the final result of a run. Pure.
//!
//! Every set threshold is checked; the verdict lists every breach (measured
//! and allowed value) and every threshold whose number the master did not
//! report. A missing number never passes silently.

use crate::api::condition_reason;
use crate::api::status::TestResult;
use crate::api::v2::ThresholdsSpec;

/// Errors of this module: why a result does not pass.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// At least one threshold was breached (every breach listed, plus any
    /// threshold that could not be checked).
    #[error("{}", describe(breaches, missing))]
    Breached {
        /// The breaches, in threshold order.
        breaches: Vec<Breach>,
        /// Thresholds whose number was not reported.
        missing: Vec<&'static str>,
    },
    /// Numbers needed by thresholds are missing (the names of those numbers).
    #[error("no final value reported for {}", .0.join(", "))]
    Unavailable(Vec<&'static str>),
}

impl ThresholdError {
    /// CamelCase reason, used as the `TestCompleted` condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ThresholdError::Breached { .. } => condition_reason::THRESHOLDS_BREACHED,
            ThresholdError::Unavailable(_) => condition_reason::RESULTS_UNAVAILABLE,
        }
    }
}

fn describe(breaches: &[Breach], missing: &[&'static str]) -> String {
    let mut parts: Vec<String> = breaches.iter().map(Breach::to_string).collect();
    if !missing.is_empty() {
        parts.push(format!(
            "no final value reported for {}",
            missing.join(", ")
        ));
    }
    parts.join("; ")
}

/// One breached threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    /// What was measured, e.g. `p95 response time`.
    pub metric: &'static str,
    /// The measured value.
    pub measured: f64,
    /// The threshold.
    pub allowed: f64,
    /// True for a lower bound (`minRequestsPerSecond`), false for an upper bound.
    pub lower_bound: bool,
    /// Unit shown after the numbers (`" ms"`, `" req/s"` or `""`).
    pub unit: &'static str,
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.lower_bound { "<" } else { ">" };
        write!(
            f,
            "{} {}{} {op} {}{}",
            self.metric,
            fmt_num(self.measured),
            self.unit,
            fmt_num(self.allowed),
            self.unit
        )
    }
}

struct Check {
    metric: &'static str,
    allowed: Option<f64>,
    measured: Option<f64>,
    lower_bound: bool,
    unit: &'static str,
}

/// Checks `result` against `thresholds`. `Ok(())` when every set threshold holds.
/// Breaches win over missing numbers: a breach is reported even if another
/// threshold could not be checked (the missing ones are then listed too).
pub fn evaluate(thresholds: &ThresholdsSpec, result: &TestResult) -> Result<(), ThresholdError> {
    let checks = [
        Check {
            metric: "fail ratio",
            allowed: thresholds.max_fail_ratio,
            measured: result.fail_ratio,
            lower_bound: false,
            unit: "",
        },
        Check {
            metric: "average response time",
            allowed: thresholds.max_average_response_time,
            measured: result.average_response_time,
            lower_bound: false,
            unit: " ms",
        },
        Check {
            metric: "p50 response time",
            allowed: thresholds.max_p50_response_time,
            measured: result.median_response_time,
            lower_bound: false,
            unit: " ms",
        },
        Check {
            metric: "p90 response time",
            allowed: thresholds.max_p90_response_time,
            measured: result.p90_response_time,
            lower_bound: false,
            unit: " ms",
        },
        Check {
            metric: "p95 response time",
            allowed: thresholds.max_p95_response_time,
            measured: result.p95_response_time,
            lower_bound: false,
            unit: " ms",
        },
        Check {
            metric: "p99 response time",
            allowed: thresholds.max_p99_response_time,
            measured: result.p99_response_time,
            lower_bound: false,
            unit: " ms",
        },
        Check {
            metric: "requests per second",
            allowed: thresholds.min_requests_per_second,
            measured: result.requests_per_second,
            lower_bound: true,
            unit: " req/s",
        },
    ];
    let mut breaches = Vec::new();
    let mut missing = Vec::new();
    for c in checks {
        let Some(allowed) = c.allowed else { continue };
        match c.measured.filter(|m| m.is_finite()) {
            None => missing.push(c.metric),
            Some(m) => {
                let breached = if c.lower_bound {
                    m < allowed
                } else {
                    m > allowed
                };
                if breached {
                    breaches.push(Breach {
                        metric: c.metric,
                        measured: m,
                        allowed,
                        lower_bound: c.lower_bound,
                        unit: c.unit,
                    });
                }
            }
        }
    }
    match (breaches.is_empty(), missing.is_empty()) {
        (true, true) => Ok(()),
        (true, false) => Err(ThresholdError::Unavailable(missing)),
        (false, _) => Err(ThresholdError::Breached { breaches, missing }),
    }
}

/// True when any threshold is set.
pub fn any_set(t: &ThresholdsSpec) -> bool {
    t != &ThresholdsSpec::default()
}
