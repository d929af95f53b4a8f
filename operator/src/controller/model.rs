//! What a reconcile observed and the vocabulary of its steps: the test's
//! children, what the caches show of them and of their pods, the master's
//! statistics, and the Events a transition publishes. Data only (the steps and
//! the phase machine use it; it uses none of them).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;

use crate::api::status::{LiveStats, TestResult};
use crate::resources;

use super::pod_health::HealthReport;

/// One child of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Child {
    MasterService,
    MasterJob,
    WorkerJob,
}

impl Child {
    /// Every child, in the order they are created and reported.
    pub const ALL: [Child; 3] = [Child::MasterService, Child::MasterJob, Child::WorkerJob];

    /// The API kind.
    pub fn kind(self) -> &'static str {
        match self {
            Child::MasterService => "Service",
            Child::MasterJob | Child::WorkerJob => "Job",
        }
    }

    /// How messages and Events name it.
    pub fn label(self) -> &'static str {
        match self {
            Child::MasterService => "master Service",
            Child::MasterJob => "master Job",
            Child::WorkerJob => "worker Job",
        }
    }

    /// Its name, for the test `test_name`.
    pub fn name(self, test_name: &str) -> String {
        match self {
            Child::MasterService => resources::names::service_name(test_name),
            Child::MasterJob => resources::names::master_job_name(test_name),
            Child::WorkerJob => resources::names::worker_job_name(test_name),
        }
    }

    /// Whether `obs` has it (in the caches, or created and not yet seen there).
    pub fn exists(self, obs: &Observed) -> bool {
        match self {
            Child::MasterService => obs.service_exists,
            Child::MasterJob => obs.master_job_exists,
            Child::WorkerJob => obs.worker_job_exists,
        }
    }

    pub(super) fn set_exists(self, obs: &mut Observed) {
        match self {
            Child::MasterService => obs.service_exists = true,
            Child::MasterJob => obs.master_job_exists = true,
            Child::WorkerJob => obs.worker_job_exists = true,
        }
    }
}

/// Whether `meta` has a controller owner reference to the test `uid`.
pub fn owned_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

/// The outcome of reading the master's statistics during this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum StatsObservation {
    /// The master answered.
    Read {
        /// Live numbers for `status.live`.
        live: LiveStats,
        /// Workers connected to the master, as the master counts them.
        workers: Option<i32>,
        /// The final result, once Locust's state is `stopped`.
        final_result: Option<Box<TestResult>>,
    },
    /// The master could not be read.
    Failed {
        /// Condition reason (`MasterUnreachable`, `MasterBadResponse`, `StatsUndecodable`).
        reason: &'static str,
        /// The error.
        message: String,
    },
}

/// How a finished Job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Complete,
    Failed { reason: String, message: String },
}

impl JobOutcome {
    /// `<role> Job failed: <reason>[: <message>]` for a failed Job, else `None`.
    pub(super) fn failure(&self, role: &str) -> Option<String> {
        match self {
            JobOutcome::Complete => None,
            JobOutcome::Failed { reason, message } if message.is_empty() => {
                Some(format!("{role} Job failed: {reason}"))
            }
            JobOutcome::Failed { reason, message } => {
                Some(format!("{role} Job failed: {reason}: {message}"))
            }
        }
    }
}

/// What the reconciler saw (from its caches) after ensuring the children exist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub service_exists: bool,
    pub master_job_exists: bool,
    pub worker_job_exists: bool,
    /// Set once the master Job has finished.
    pub master_outcome: Option<JobOutcome>,
    /// Set once the worker Job has finished (it fails after more worker
    /// failures than its `backoffLimit`; it completes when workers exit 0).
    pub worker_outcome: Option<JobOutcome>,
    /// Set when the master pod was evicted, preempted or deleted before its Job
    /// finished ([`super::pod_health::lost`]): how it went.
    pub master_lost: Option<String>,
    /// When the (earliest) running master pod started, if one runs.
    pub master_running_since: Option<Timestamp>,
    /// Worker pods in phase Running.
    pub running_workers: i32,
    /// Unhealthy pods, if any.
    pub health: Option<HealthReport>,
    /// The spec hash the children were built from (annotation on the children).
    pub children_spec_hash: Option<String>,
    /// Children that were missing and could not be recreated because the spec drifted.
    pub missing_not_recreated: Vec<Child>,
    /// The master's statistics, when they were read during this reconcile.
    pub stats: Option<StatsObservation>,
    /// When the next statistics read is due (requeue deadline while running).
    pub next_stats_read: Option<Duration>,
    /// Time left until the start deadline, while the test waits to start.
    pub start_deadline_in: Option<Duration>,
    /// Set once the start deadline passed without the master running.
    pub start_failure: Option<StartFailure>,
}

/// Why a test that never started failed ([`super::start_deadline`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFailure {
    /// `TestCompleted` reason: the cause (`ConfigError`, `Unschedulable`,
    /// `ImagePullError`) or `StartTimedOut`.
    pub reason: &'static str,
    pub message: String,
}

/// An Event to publish because of a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}
