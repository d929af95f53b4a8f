//! The master and worker Jobs.

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::Role;
use super::TestRef;
use super::names::job_name;
use crate::api::LocustTestSpec;
use crate::config::OperatorConfig;

/// Pod condition set when a pod is evicted, preempted or its node is drained or reclaimed.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";

/// The pod failure policy of a role's Job.
///
/// - worker: pods that failed with the `DisruptionTarget` condition (eviction, preemption,
///   spot reclaim) are `Ignore`d: they do not count against `backoffLimit` and the Job
///   controller replaces them, so the test keeps its workers;
/// - master: the same condition `FailJob`s at once, so a lost master fails the test with
///   the `PodFailurePolicy` reason instead of a generic backoff failure.
pub fn pod_failure_policy(role: Role) -> PodFailurePolicy {
    let action = match role {
        Role::Master => "FailJob",
        Role::Worker => "Ignore",
    };
    PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: action.to_owned(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: DISRUPTION_TARGET.to_owned(),
                status: "True".to_owned(),
            }]),
        }],
    }
}

/// A role's Job around `template`: master with parallelism and completions 1 and
/// `backoffLimit: 0` (a master is never restarted: it holds the test's state); worker with
/// parallelism `spec.worker.replicas`, no completions and `backoffLimit` equal to the
/// replicas (a worker pod that fails or is deleted is replaced, up to that many times in
/// all, and a fresh worker simply reconnects to the master); both with the role's
/// [`pod_failure_policy`] and `ttlSecondsAfterFinished` from the configuration.
pub(super) fn build_job(
    test: &TestRef<'_>,
    spec: &LocustTestSpec,
    cfg: &OperatorConfig,
    role: Role,
    template: PodTemplateSpec,
) -> Job {
    let (parallelism, completions, backoff_limit) = match role {
        Role::Master => (1, Some(1), 0),
        Role::Worker => (spec.worker.replicas, None, spec.worker.replicas.max(0)),
    };
    Job {
        metadata: test.child_metadata(job_name(test.name, role), role),
        spec: Some(JobSpec {
            parallelism: Some(parallelism),
            completions,
            backoff_limit: Some(backoff_limit),
            pod_failure_policy: Some(pod_failure_policy(role)),
            ttl_seconds_after_finished: cfg.job_ttl_seconds_after_finished,
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}
