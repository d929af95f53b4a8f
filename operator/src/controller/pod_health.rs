//! Pod health classification: turns what the kubelet and scheduler report on
//! a test's pods into one reason and a message that names the pods and the cause.

use k8s_openapi::api::core::v1::Pod;

use crate::api::condition_reason as reason;
use crate::resources::DISRUPTION_TARGET;

/// Why a pod is unhealthy, most actionable first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// The image cannot be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName).
    ImagePullError,
    /// A referenced ConfigMap or Secret (or key) is missing (CreateContainerConfigError).
    ConfigError,
    /// The scheduler cannot place the pod.
    Unschedulable,
    /// The container keeps crashing.
    CrashLoop,
    /// The container exited with a non-zero code.
    ContainerFailed,
}

impl Problem {
    /// Condition reason (CamelCase).
    pub fn reason(self) -> &'static str {
        match self {
            Problem::ImagePullError => reason::IMAGE_PULL_ERROR,
            Problem::ConfigError => reason::CONFIG_ERROR,
            Problem::Unschedulable => reason::UNSCHEDULABLE,
            Problem::CrashLoop => reason::CRASH_LOOP,
            Problem::ContainerFailed => reason::CONTAINER_FAILED,
        }
    }

    /// What to check, for messages.
    pub fn hint(self) -> &'static str {
        match self {
            Problem::ImagePullError => "check spec.image and spec.imagePullSecrets",
            Problem::ConfigError => {
                "check that every ConfigMap and Secret the test references exists in its namespace"
            }
            Problem::Unschedulable => {
                "check spec.scheduling, resource requests and the cluster's free capacity"
            }
            Problem::CrashLoop => "check the container logs",
            Problem::ContainerFailed => "check the container logs",
        }
    }
}

/// One unhealthy pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub problem: Problem,
    pub detail: String,
}

/// Classifies one pod; `None` when healthy (or simply still starting).
pub fn classify(pod: &Pod) -> Option<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let mk = |problem: Problem, detail: String| PodProblem {
        pod: name.clone(),
        problem,
        detail,
    };

    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut found: Option<PodProblem> = None;
    for cs in containers {
        let state = cs.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.as_deref().unwrap_or_default();
            let message = w.message.clone().unwrap_or_default();
            let problem = match reason {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    Some(Problem::ImagePullError)
                }
                "CreateContainerConfigError" | "CreateContainerError" => Some(Problem::ConfigError),
                "CrashLoopBackOff" => Some(Problem::CrashLoop),
                _ => None,
            };
            if let Some(p) = problem {
                let detail = if message.is_empty() {
                    reason.to_owned()
                } else {
                    format!("{reason}: {message}")
                };
                found = pick(found, mk(p, detail));
            }
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref())
            && t.exit_code != 0
        {
            let reason = t.reason.as_deref().unwrap_or("Error");
            found = pick(
                found,
                mk(
                    Problem::ContainerFailed,
                    format!(
                        "container {} exited with code {} ({reason})",
                        cs.name, t.exit_code
                    ),
                ),
            );
        }
    }
    if found.is_none() {
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        if let Some(c) = unschedulable {
            found = Some(mk(
                Problem::Unschedulable,
                c.message
                    .clone()
                    .unwrap_or_else(|| "Unschedulable".to_owned()),
            ));
        }
    }
    found
}

fn pick(current: Option<PodProblem>, new: PodProblem) -> Option<PodProblem> {
    match current {
        Some(c) if c.problem <= new.problem => Some(c),
        _ => Some(new),
    }
}

/// Why a pod is going away while its test runs, or `None`: the pod carries the
/// `DisruptionTarget` condition (evicted, preempted, its node drained or lost) or
/// has been deleted (`deletionTimestamp` set). Locust exits 0 on the SIGTERM that
/// follows, so the pod ends `Succeeded` and its Job cannot tell the loss from a
/// finished run; this is how the operator tells them apart.
pub fn lost(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let disruption = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_TARGET && c.status == "True");
    if let Some(c) = disruption {
        let why = c.reason.as_deref().unwrap_or(DISRUPTION_TARGET);
        return Some(match c.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => format!("pod {name} was disrupted ({why}: {m})"),
            None => format!("pod {name} was disrupted ({why})"),
        });
    }
    pod.metadata
        .deletion_timestamp
        .as_ref()
        .map(|_| format!("pod {name} was deleted"))
}

/// The summary of every unhealthy pod of a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The most actionable problem among the pods.
    pub problem: Problem,
    /// "pod a: reason: detail; pod b: ...; <hint>", bounded in length.
    pub message: String,
}

const MAX_MESSAGE: usize = 1000;

/// Classifies a test's pods. Pods being deleted are ignored.
pub fn assess<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Option<HealthReport> {
    let mut problems: Vec<PodProblem> = pods
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(classify)
        .collect();
    if problems.is_empty() {
        return None;
    }
    problems.sort_by(|a, b| a.problem.cmp(&b.problem).then_with(|| a.pod.cmp(&b.pod)));
    let problem = problems[0].problem;
    let mut message = String::new();
    for (i, p) in problems.iter().enumerate() {
        let part = format!("pod {}: {}: {}", p.pod, p.problem.reason(), p.detail);
        if message.len() + part.len() > MAX_MESSAGE {
            message.push_str(&format!("; and {} more", problems.len() - i));
            break;
        }
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(&part);
    }
    message.push_str("; ");
    message.push_str(problem.hint());
    Some(HealthReport { problem, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodStatus,
    };
    use kube::api::ObjectMeta;

    fn pod(name: &str, status: PodStatus) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(status),
        }
    }

    fn waiting(name: &str, reason: &str, message: &str) -> Pod {
        pod(
            name,
            PodStatus {
                phase: Some("Pending".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "locust".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some(message.into()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
    }

    fn terminated(name: &str, code: i32) -> Pod {
        pod(
            name,
            PodStatus {
                phase: Some(if code == 0 { "Succeeded" } else { "Failed" }.into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "locust".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
    }

    #[test]
    fn image_pull_errors() {
        for reason in ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"] {
            let p = classify(&waiting("t-master-abc", reason, "pull failed")).unwrap();
            assert_eq!(p.problem, Problem::ImagePullError, "{reason}");
            assert!(p.detail.contains(reason));
        }
    }

    #[test]
    fn missing_config_map_or_secret() {
        let p = classify(&waiting(
            "t-worker-x",
            "CreateContainerConfigError",
            "configmap \"cfg\" not found",
        ))
        .unwrap();
        assert_eq!(p.problem, Problem::ConfigError);
        assert!(p.detail.contains("configmap \"cfg\" not found"));
    }

    #[test]
    fn crash_loop_and_exit_codes() {
        assert_eq!(
            classify(&waiting("p", "CrashLoopBackOff", "back-off"))
                .unwrap()
                .problem,
            Problem::CrashLoop
        );
        let failed = classify(&terminated("p", 3)).unwrap();
        assert_eq!(failed.problem, Problem::ContainerFailed);
        assert!(failed.detail.contains("code 3"));
        assert_eq!(classify(&terminated("p", 0)), None);
    }

    #[test]
    fn unschedulable() {
        let p = pod(
            "t-master-x",
            PodStatus {
                phase: Some("Pending".into()),
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/2 nodes are available: 2 Insufficient cpu.".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        );
        let c = classify(&p).unwrap();
        assert_eq!(c.problem, Problem::Unschedulable);
        assert!(c.detail.contains("Insufficient cpu"));
    }

    #[test]
    fn healthy_and_starting_pods_are_fine() {
        assert_eq!(classify(&waiting("p", "ContainerCreating", "")), None);
        assert_eq!(classify(&pod("p", PodStatus::default())), None);
        assert_eq!(assess([&waiting("p", "ContainerCreating", "")]), None);
    }

    #[test]
    fn report_names_every_pod_most_actionable_first() {
        let pods = [
            terminated("b-worker", 1),
            waiting("a-master", "ImagePullBackOff", "no such image"),
            waiting(
                "c-worker",
                "CreateContainerConfigError",
                "secret \"s\" not found",
            ),
        ];
        let r = assess(pods.iter()).unwrap();
        assert_eq!(r.problem, Problem::ImagePullError);
        let a = r.message.find("a-master").unwrap();
        let c = r.message.find("c-worker").unwrap();
        let b = r.message.find("b-worker").unwrap();
        assert!(a < c && c < b, "{}", r.message);
        assert!(r.message.ends_with(Problem::ImagePullError.hint()));
    }

    #[test]
    fn deleted_pods_are_ignored_and_message_is_bounded() {
        let mut gone = terminated("gone", 1);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(assess([&gone]), None);
        let many: Vec<Pod> = (0..200)
            .map(|i| terminated(&format!("worker-{i:03}"), 1))
            .collect();
        let r = assess(many.iter()).unwrap();
        assert!(r.message.len() < MAX_MESSAGE + 200, "{}", r.message.len());
        assert!(r.message.contains("more"));
    }

    #[test]
    fn lost_pods_are_disrupted_or_deleted() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let running = PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        };
        assert_eq!(lost(&pod("w", running.clone())), None);
        let mut evicted = pod(
            "w",
            PodStatus {
                phase: Some("Succeeded".into()),
                conditions: Some(vec![PodCondition {
                    type_: DISRUPTION_TARGET.into(),
                    status: "True".into(),
                    reason: Some("EvictionByEvictionAPI".into()),
                    message: Some("Eviction API: evicting".into()),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            },
        );
        assert_eq!(
            lost(&evicted).as_deref(),
            Some("pod w was disrupted (EvictionByEvictionAPI: Eviction API: evicting)")
        );
        // Disruption says more than the deletion that goes with it.
        evicted.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(lost(&evicted).is_some_and(|m| m.contains("disrupted")));
        let mut deleted = pod("w", running);
        deleted.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(lost(&deleted).as_deref(), Some("pod w was deleted"));
        // A DisruptionTarget that is not True is no loss.
        let mut cleared = pod("w", PodStatus::default());
        cleared.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: DISRUPTION_TARGET.into(),
                status: "False".into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        assert_eq!(lost(&cleared), None);
    }
}
