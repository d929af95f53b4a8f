//! `locust.io/v1alpha1` — `LocustSchedule`: a LocustTest run on a cron
//! schedule, shaped after Kubernetes' CronJob (issue #16).
//!
//! The types alone. The schedule arithmetic is in [`crate::schedule`] (and
//! the tests a schedule creates in [`crate::schedule::runs`]), the admission
//! rules in [`crate::validation`], the CRD in [`crate::crd::schedule_crd`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::{Phase, TestResult};
use super::v2::LocustTestSpec;

/// Desired state of a recurring Locust load test: a `LocustTest` created from
/// `template` at every time `schedule` names, like a CronJob creates Jobs.
// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "locust.io",
    version = "v1alpha1",
    kind = "LocustSchedule",
    plural = "locustschedules",
    singular = "locustschedule",
    shortname = "loschedule",
    category = "locust",
    namespaced,
    status = "LocustScheduleStatus",
    derive = "PartialEq",
    doc = "A recurring Locust load test: a LocustTest created from a template on a cron schedule, like a CronJob creates Jobs.",
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.schedule",
        description = "Cron expression of the start times"
    ),
    printcolumn(
        name = "Suspend",
        type_ = "boolean",
        json_path = ".spec.suspend",
        description = "Whether new tests are held back"
    ),
    printcolumn(
        name = "Active",
        type_ = "integer",
        json_path = ".status.activeCount",
        description = "Tests of this schedule still running"
    ),
    printcolumn(
        name = "Last Schedule",
        type_ = "date",
        json_path = ".status.lastScheduleTime",
        description = "When the last test was scheduled"
    ),
    printcolumn(
        name = "Last Result",
        type_ = "string",
        json_path = ".status.lastResult",
        description = "Final phase of the last test that finished"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Time Zone",
        type_ = "string",
        json_path = ".spec.timeZone",
        priority = "1",
        description = "IANA time zone of the schedule (UTC when unset)"
    ),
    printcolumn(
        name = "Next Schedule",
        type_ = "date",
        json_path = ".status.nextScheduleTime",
        priority = "1",
        description = "When the next test is due"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct LocustScheduleSpec {
    /// When to start a test, in CronJob's syntax: five fields (minute hour day-of-month month
    /// day-of-week, e.g. `30 2 * * 1-5`) or one of `@yearly`, `@annually`, `@monthly`,
    /// `@weekly`, `@daily`, `@midnight`, `@hourly`. No `TZ=` prefix: set `timeZone` instead.
    pub schedule: String,

    /// IANA name of the time zone `schedule` is read in, e.g. `Europe/Berlin`. Unset = UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// What to do when a test is due while an earlier one of this schedule still runs:
    /// `Forbid` (default) skips the new one, `Allow` runs both, `Replace` deletes the running
    /// test and starts the new one.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,

    /// Hold back new tests (tests already started run to their end). Default false.
    #[serde(default)]
    pub suspend: bool,

    /// Seconds after its scheduled time within which a test may still start, when the
    /// operator could not start it on time; later, that run is counted as missed. Unset = no
    /// deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,

    /// How many finished tests that succeeded to keep. Default 3.
    #[serde(default = "default_successful_history")]
    #[schemars(range(min = 0))]
    pub successful_tests_history_limit: i32,

    /// How many finished tests that failed to keep. Default 1.
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0))]
    pub failed_tests_history_limit: i32,

    /// The LocustTest to create at each scheduled time.
    pub template: LocustTestTemplate,
}

/// Default of `successfulTestsHistoryLimit`, as CronJob's `successfulJobsHistoryLimit`.
pub const DEFAULT_SUCCESSFUL_TESTS_HISTORY_LIMIT: i32 = 3;
/// Default of `failedTestsHistoryLimit`, as CronJob's `failedJobsHistoryLimit`.
pub const DEFAULT_FAILED_TESTS_HISTORY_LIMIT: i32 = 1;

fn default_successful_history() -> i32 {
    DEFAULT_SUCCESSFUL_TESTS_HISTORY_LIMIT
}

fn default_failed_history() -> i32 {
    DEFAULT_FAILED_TESTS_HISTORY_LIMIT
}

/// What to do with a due test while another test of the schedule runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Start the new test alongside the running ones.
    Allow,
    /// Skip the new test while another runs.
    #[default]
    Forbid,
    /// Delete the running test, then start the new one.
    Replace,
}

impl ConcurrencyPolicy {
    /// Every policy, in declaration order.
    pub const ALL: [ConcurrencyPolicy; 3] = [
        ConcurrencyPolicy::Allow,
        ConcurrencyPolicy::Forbid,
        ConcurrencyPolicy::Replace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Forbid => "Forbid",
            ConcurrencyPolicy::Replace => "Replace",
        }
    }
}

/// The LocustTest a schedule creates: its labels and annotations, and its spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocustTestTemplate {
    /// Labels and annotations of each created test.
    #[serde(default, skip_serializing_if = "TemplateMetadata::is_empty")]
    pub metadata: TemplateMetadata,

    /// Spec of each created test: a full `locust.io/v2` LocustTest spec, checked by the same
    /// rules as a LocustTest.
    pub spec: LocustTestSpec,
}

/// Metadata given to each created test. The operator adds the labels linking the test to
/// its schedule; those keys cannot be set here.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels of each created test.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations of each created test.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMetadata {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// Observed state of a LocustSchedule, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocustScheduleStatus {
    /// The `metadata.generation` the operator last processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Scheduled time of the last test created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,

    /// The next time a test is due (unset while suspended, or when the schedule names no time
    /// in the next five years).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,

    /// The tests of this schedule that have not finished, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub active: Vec<ScheduledTest>,

    /// How many tests are in `active` (the `ACTIVE` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_count: Option<i32>,

    /// The last test that ended `Succeeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_test: Option<FinishedTest>,

    /// The last test that ended `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_test: Option<FinishedTest>,

    /// Final phase of the last test that finished: `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<Phase>,

    /// The last value of the `locust.io/run-now` annotation a test was started for: a new
    /// value starts one test now, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now_token: Option<String>,

    /// Standard conditions of the schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A test the schedule created.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTest {
    /// Name of the LocustTest, in the schedule's namespace.
    pub name: String,

    /// The time it was scheduled for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,
}

/// A finished test of the schedule, with its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinishedTest {
    /// Name of the LocustTest, in the schedule's namespace.
    pub name: String,

    /// The time it was scheduled for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,

    /// When it reached `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// Reason of the test's `TestCompleted` condition, e.g. `TestSucceeded` or `ThresholdsBreached`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The test's final statistics (its `status.result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TestResult>,
}
