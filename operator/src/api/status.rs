//! Status of a `LocustTest`, shared by every served version.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::vocabulary::condition_type;

/// Observed state of a LocustTest, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocustTestStatus {
    /// Lifecycle phase: `Pending` until the master pod runs, `Running`, then `Succeeded` or `Failed` (final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The `metadata.generation` the operator last processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Worker pods the test asked for (`spec.worker.replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_workers: Option<i32>,

    /// Workers currently connected to the master (running worker pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_workers: Option<i32>,

    /// When the master pod started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// When the test reached `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// Final statistics of the run, read from the Locust master when its run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TestResult>,

    /// Latest numbers read from the Locust master while the test runs (refreshed at most once
    /// per stats interval, only when they change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveStats>,

    /// Standard conditions: Ready, WorkersConnected, TestCompleted, PodsHealthy, SpecDrifted, StatsAvailable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Lifecycle phase of a LocustTest.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Pending,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    /// Succeeded and Failed are final: nothing moves a test out of them.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Final statistics of a test run, as reported by the Locust master.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// Requests sent over the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_requests: Option<i64>,
    /// Requests that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_requests: Option<i64>,
    /// failedRequests / totalRequests, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_ratio: Option<f64>,
    /// Mean response time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_response_time: Option<f64>,
    /// Median (p50) response time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_response_time: Option<f64>,
    /// 90th percentile response time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_response_time: Option<f64>,
    /// 95th percentile response time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_response_time: Option<f64>,
    /// 99th percentile response time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_response_time: Option<f64>,
    /// Slowest response in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_time: Option<f64>,
    /// Requests per second over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Locust's own state of the run (`running`, `stopped`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Live statistics of a running test, as last read from the Locust master.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveStats {
    /// Users currently simulated, over all workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_users: Option<i64>,
    /// Current requests per second (Locust's `total_rps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Current share of failed requests, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_ratio: Option<f64>,
    /// Requests sent so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_requests: Option<i64>,
    /// Requests failed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_requests: Option<i64>,
    /// Mean response time so far, in milliseconds (absent before the first request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_response_time: Option<f64>,
    /// Median (p50) response time so far, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_response_time: Option<f64>,
    /// 95th percentile response time so far, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_response_time: Option<f64>,
    /// 99th percentile response time so far, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_response_time: Option<f64>,
    /// Slowest response so far, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_time: Option<f64>,
    /// Locust's state of the run (`ready`, `spawning`, `running`, `stopped`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
