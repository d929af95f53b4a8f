//! Kubelet stand-ins: tests decide how a pod's containers end.
//!
//! kwok's `pod-ready` stage makes scheduled pods Running; nothing finishes
//! them. A test does, with [`Cluster::complete_pod`] (or shows a pod stuck
//! with [`Cluster::set_pod_waiting`]). Before writing a pod's status the
//! harness annotates it `kwok.x-k8s.io/status: custom`, which the stage
//! configuration excludes from `pod-ready`, so kwok never writes it back.
//! Deleting such a pod still works (kwok's `pod-delete` stage), and the
//! status is patched through the `status` subresource like a kubelet does.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::Cluster;
use crate::wait::wait_for;

/// Annotation that makes kwok leave a pod's status alone.
pub const CUSTOM_STATUS_ANNOTATION: &str = "kwok.x-k8s.io/status";
/// Value of [`CUSTOM_STATUS_ANNOTATION`].
pub const CUSTOM_STATUS_VALUE: &str = "custom";
/// Label the Job controller puts on a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn condition(
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    at: &Time,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(at.clone()),
        ..PodCondition::default()
    }
}

fn container_statuses(
    pod: &Pod,
    ready: bool,
    state: impl Fn(&str, Option<&Time>) -> ContainerState,
) -> Vec<ContainerStatus> {
    let previous = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    pod.spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|container| {
            let before = previous.and_then(|ps| ps.iter().find(|p| p.name == container.name));
            let started_at = before
                .and_then(|p| p.state.as_ref())
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref());
            ContainerStatus {
                name: container.name.clone(),
                image: container.image.clone().unwrap_or_default(),
                image_id: before.map(|p| p.image_id.clone()).unwrap_or_default(),
                container_id: before.and_then(|p| p.container_id.clone()),
                ready,
                started: Some(ready),
                restart_count: before.map_or(0, |p| p.restart_count),
                state: Some(state(&container.name, started_at)),
                ..ContainerStatus::default()
            }
        })
        .collect()
}

/// The status patch of a pod whose containers all exited with `exit_code`:
/// phase Succeeded (0) or Failed (anything else), containers terminated with
/// reason Completed or Error.
pub fn terminated_status_patch(pod: &Pod, exit_code: i32) -> Value {
    let at = now();
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let statuses = container_statuses(pod, false, |_, started_at| ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason.to_string()),
            started_at: Some(started_at.cloned().unwrap_or_else(|| at.clone())),
            finished_at: Some(at.clone()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    });
    json!({
        "status": {
            "phase": phase,
            "conditions": [
                condition("Ready", false, Some("PodCompleted"), None, &at),
                condition("ContainersReady", false, Some("PodCompleted"), None, &at),
            ],
            "containerStatuses": statuses,
        }
    })
}

/// The status patch of a pod whose containers cannot start: phase Pending,
/// containers waiting with `reason` (e.g. `ImagePullBackOff`,
/// `CreateContainerConfigError`) and `message`.
pub fn waiting_status_patch(pod: &Pod, reason: &str, message: &str) -> Value {
    let at = now();
    let statuses = container_statuses(pod, false, |_, _| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
        }),
        ..ContainerState::default()
    });
    let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    json!({
        "status": {
            "phase": "Pending",
            "conditions": [
                condition("Ready", false, Some("ContainersNotReady"), Some(unready.clone()), &at),
                condition("ContainersReady", false, Some("ContainersNotReady"), Some(unready), &at),
            ],
            "containerStatuses": statuses,
        }
    })
}

/// The status patch of a pod whose containers all run and are ready.
pub fn running_status_patch(pod: &Pod) -> Value {
    let at = now();
    let statuses = container_statuses(pod, true, |_, started_at| ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(started_at.cloned().unwrap_or_else(|| at.clone())),
        }),
        ..ContainerState::default()
    });
    json!({
        "status": {
            "phase": "Running",
            "conditions": [
                condition("Ready", true, None, None, &at),
                condition("ContainersReady", true, None, None, &at),
            ],
            "containerStatuses": statuses,
        }
    })
}

/// The state of the pod's first container, once it has a status.
pub fn first_container_state(pod: &Pod) -> Option<&ContainerState> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()
}

/// Pod phase (`""` when unset).
pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The last `lines` log lines of pod `name`, or why there are none, for
/// failure messages.
pub async fn pod_log_tail(pods: &Api<Pod>, name: &str, lines: i64) -> String {
    let params = LogParams {
        tail_lines: Some(lines),
        ..LogParams::default()
    };
    pods.logs(name, &params)
        .await
        .unwrap_or_else(|e| format!("(no log: {e})"))
}

/// Whether the pod runs on a node (phase Running and bound).
pub fn pod_running(pod: &Pod) -> bool {
    pod_phase(pod) == "Running"
        && pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
}

impl Cluster {
    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.admin_client(), namespace)
    }

    /// Pods of `namespace` matching `label_selector` (empty: all), sorted by
    /// name.
    pub async fn list_pods(&self, namespace: &str, label_selector: &str) -> Result<Vec<Pod>> {
        let mut params = ListParams::default();
        if !label_selector.is_empty() {
            params = params.labels(label_selector);
        }
        let mut pods = self
            .pods(namespace)
            .list(&params)
            .await
            .with_context(|| format!("listing pods in {namespace} ({label_selector})"))?
            .items;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(pods)
    }

    /// The pods of Job `job_name`, sorted by name.
    pub async fn job_pods(&self, namespace: &str, job_name: &str) -> Result<Vec<Pod>> {
        self.list_pods(namespace, &format!("{JOB_NAME_LABEL}={job_name}"))
            .await
    }

    /// Waits until the pods matching `label_selector` satisfy `condition`, and
    /// returns them.
    pub async fn wait_for_pods(
        &self,
        namespace: &str,
        label_selector: &str,
        timeout: Duration,
        condition: impl Fn(&[Pod]) -> bool,
    ) -> Result<Vec<Pod>> {
        let condition = &condition;
        wait_for(timeout, Duration::from_millis(200), || async move {
            let pods = self.list_pods(namespace, label_selector).await?;
            Ok(condition(&pods).then_some(pods))
        })
        .await
        .with_context(|| format!("waiting for pods in {namespace} matching {label_selector:?}"))
    }

    /// Waits until exactly `count` pods match and all are Running on a node.
    pub async fn wait_for_running_pods(
        &self,
        namespace: &str,
        label_selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Pod>> {
        self.wait_for_pods(namespace, label_selector, timeout, |pods| {
            pods.len() == count && pods.iter().all(pod_running)
        })
        .await
        .with_context(|| format!("expecting {count} running pod(s)"))
    }

    /// Waits until no pod matches (they were deleted and are gone).
    pub async fn wait_for_no_pods(
        &self,
        namespace: &str,
        label_selector: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.wait_for_pods(namespace, label_selector, timeout, <[Pod]>::is_empty)
            .await
            .map(drop)
    }

    async fn mark_custom_status(&self, namespace: &str, name: &str) -> Result<Pod> {
        let patch = json!({
            "metadata": { "annotations": { CUSTOM_STATUS_ANNOTATION: CUSTOM_STATUS_VALUE } }
        });
        self.pods(namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("annotating pod {namespace}/{name}"))
    }

    async fn write_status(
        &self,
        namespace: &str,
        name: &str,
        build: impl Fn(&Pod) -> Value,
    ) -> Result<Pod> {
        let pod = self.mark_custom_status(namespace, name).await?;
        let patch = build(&pod);
        let api = self.pods(namespace);
        let want_phase = patch["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut written = api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .with_context(|| format!("patching the status of pod {namespace}/{name}"))?;
        // While a bound pod is still Pending, kwok's pod-ready write may have
        // been computed before the annotation landed and arrive after ours:
        // watch for a moment and re-apply if it did. (Once a pod is Running,
        // or while it is unbound, kwok has nothing in flight for it.)
        let racy = pod_phase(&pod) == "Pending"
            && pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty());
        for _ in 0..if racy { 5 } else { 0 } {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let current = api
                .get(name)
                .await
                .with_context(|| format!("reading pod {namespace}/{name}"))?;
            if pod_phase(&current) == want_phase {
                written = current;
                continue;
            }
            written = api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Strategic(&build(&current)),
                )
                .await
                .with_context(|| format!("re-patching the status of pod {namespace}/{name}"))?;
        }
        Ok(written)
    }

    /// Ends every container of the pod with `exit_code` (0: phase Succeeded,
    /// reason Completed; otherwise phase Failed, reason Error), as the kubelet
    /// would when the process exits.
    pub async fn complete_pod(&self, namespace: &str, name: &str, exit_code: i32) -> Result<Pod> {
        self.write_status(namespace, name, |pod| {
            terminated_status_patch(pod, exit_code)
        })
        .await
    }

    /// Shows the pod's containers stuck waiting (phase Pending) with `reason`
    /// and `message`, e.g. `ImagePullBackOff` or `CreateContainerConfigError`.
    pub async fn set_pod_waiting(
        &self,
        namespace: &str,
        name: &str,
        reason: &str,
        message: &str,
    ) -> Result<Pod> {
        self.write_status(namespace, name, |pod| {
            waiting_status_patch(pod, reason, message)
        })
        .await
    }

    /// Shows every container of the pod running and ready (phase Running).
    pub async fn set_pod_running(&self, namespace: &str, name: &str) -> Result<Pod> {
        self.write_status(namespace, name, running_status_patch)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![
                    Container {
                        name: "locust".into(),
                        image: Some("locustio/locust:2.32.0".into()),
                        ..Container::default()
                    },
                    Container {
                        name: "sidecar".into(),
                        image: Some("busybox".into()),
                        ..Container::default()
                    },
                ],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "locust".into(),
                    image: "locustio/locust:2.32.0".into(),
                    image_id: "sha256:abc".into(),
                    restart_count: 2,
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn success_and_failure() {
        let ok = terminated_status_patch(&pod(), 0);
        assert_eq!(ok["status"]["phase"], "Succeeded");
        let statuses = ok["status"]["containerStatuses"].as_array().unwrap();
        assert_eq!(statuses.len(), 2);
        let t = &statuses[0]["state"]["terminated"];
        assert_eq!(t["exitCode"], 0);
        assert_eq!(t["reason"], "Completed");
        assert_eq!(
            t["startedAt"], "1970-01-01T00:00:00Z",
            "keeps the running start time"
        );
        assert_eq!(statuses[0]["restartCount"], 2);
        assert_eq!(statuses[0]["imageID"], "sha256:abc");
        assert_eq!(statuses[1]["name"], "sidecar");

        let failed = terminated_status_patch(&pod(), 137);
        assert_eq!(failed["status"]["phase"], "Failed");
        let t = &failed["status"]["containerStatuses"][1]["state"]["terminated"];
        assert_eq!(t["exitCode"], 137);
        assert_eq!(t["reason"], "Error");
        let ready = &failed["status"]["conditions"][0];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("False"))
        );
    }

    #[test]
    fn waiting_and_running() {
        let w = waiting_status_patch(&pod(), "ImagePullBackOff", "Back-off pulling image");
        assert_eq!(w["status"]["phase"], "Pending");
        let waiting = &w["status"]["containerStatuses"][0]["state"]["waiting"];
        assert_eq!(waiting["reason"], "ImagePullBackOff");
        assert_eq!(waiting["message"], "Back-off pulling image");
        assert_eq!(
            w["status"]["conditions"][0]["message"],
            "containers with unready status: [locust sidecar]"
        );

        let r = running_status_patch(&pod());
        assert_eq!(r["status"]["phase"], "Running");
        assert_eq!(r["status"]["containerStatuses"][1]["ready"], true);
        assert!(r["status"]["containerStatuses"][1]["state"]["running"]["startedAt"].is_string());
        assert_eq!(r["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn running_needs_a_node() {
        let mut p = pod();
        assert!(!pod_running(&p));
        p.spec.as_mut().unwrap().node_name = Some("kwok-node-0".into());
        assert!(pod_running(&p));
    }
}
