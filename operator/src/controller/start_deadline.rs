//! The start deadline: a test whose master pod is not running
//! `--start-timeout` after the test was created ends `Failed`, with a reason
//! and a message that name the cause. Some causes show on the pod and are
//! caught sooner by the grace period ([`super::pod_health`]); others never
//! do. A volume whose ConfigMap or Secret is missing, for one, leaves the
//! pod `ContainerCreating` with nothing but the kubelet's `FailedMount`
//! Warning Events to say why. So when the deadline passes, this step reads
//! the Warning Events of the test's pods (and, with no pod, of its Jobs),
//! once, and [`diagnose`] turns them and the pods' state into the failure.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams};
use tracing::{debug, info};

use crate::api::{LocustTest, condition_reason as reason};
use crate::resources::labels;

use super::context::Context;
use super::model::{Child, StartFailure};
use super::observe::Seen;
use super::pod_health::Problem;

/// Most Warning Events quoted in a failure message.
const MAX_QUOTED_EVENTS: usize = 3;

/// A Warning Event, as far as the diagnosis needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The object it is about (`pod/<name>` or `job/<name>`).
    pub object: String,
    pub reason: String,
    pub message: String,
}

/// The cause a Warning Event names, if it names one the pod state does not.
fn problem_of(w: &Warning) -> Option<Problem> {
    let m = w.message.to_ascii_lowercase();
    match w.reason.as_str() {
        "FailedMount" | "FailedAttachVolume" if m.contains("not found") => {
            Some(Problem::ConfigError)
        }
        "FailedScheduling" => Some(Problem::Unschedulable),
        "Failed" | "ErrImagePull" | "ImagePullBackOff"
            if m.contains("pull") || m.contains("image") =>
        {
            Some(Problem::ImagePullError)
        }
        _ => None,
    }
}

/// How a pod that does not run looks: its phase and each waiting
/// container's reason.
pub fn pod_state(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let waiting: Vec<String> = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            Some(format!(
                "{} {}",
                c.name,
                w.reason.as_deref().unwrap_or("waiting")
            ))
        })
        .collect();
    if waiting.is_empty() {
        format!("pod {name} {phase}")
    } else {
        format!("pod {name} {phase} ({})", waiting.join(", "))
    }
}

/// The failure of a test past its start deadline: the most actionable cause
/// the Warning Events name (else `StartTimedOut`), and a message with the
/// deadline, the pods' state and the Events, newest last.
pub fn diagnose(timeout: Duration, pods: &[String], warnings: &[Warning]) -> StartFailure {
    let problem = warnings.iter().filter_map(problem_of).min();
    let mut parts = vec![format!(
        "the master pod did not run within the start timeout ({}s)",
        timeout.as_secs()
    )];
    if pods.is_empty() {
        parts.push("no pod of the test exists".to_owned());
    } else {
        parts.push(pods.join("; "));
    }
    let quoted: Vec<String> = warnings
        .iter()
        .rev()
        .take(MAX_QUOTED_EVENTS)
        .rev()
        .map(|w| format!("{} {}: {}", w.object, w.reason, w.message))
        .collect();
    if !quoted.is_empty() {
        parts.push(format!("Warning Events: {}", quoted.join("; ")));
    }
    if let Some(p) = problem {
        parts.push(p.hint().to_owned());
    }
    StartFailure {
        reason: problem.map_or(reason::START_TIMED_OUT, Problem::reason),
        message: parts.join("; "),
    }
}

/// When the start deadline of `test` passes, if it has one.
fn deadline(test: &LocustTest, timeout: Duration) -> Option<Timestamp> {
    let created = test.metadata.creation_timestamp.as_ref()?.0;
    let timeout = SignedDuration::try_from(timeout).ok()?;
    created.checked_add(timeout).ok()
}

/// Whether the deadline applies: the test has not started (its master pod
/// never ran) and is not over.
fn waiting_to_start(seen: &Seen) -> bool {
    !seen.terminal() && !seen.started() && seen.obs.master_running_since.is_none()
}

/// The start-deadline step. Before the deadline it records when to look
/// again; past it, it reads the Warning Events and records the failure.
pub(super) async fn check(ctx: &Context, test: &LocustTest, seen: &mut Seen) {
    let timeout = ctx.config.start_timeout;
    if timeout.is_zero() || !waiting_to_start(seen) {
        return;
    }
    let Some(at) = deadline(test, timeout) else {
        return;
    };
    let now = Timestamp::now();
    if now < at {
        let left = Duration::try_from(now.duration_until(at)).unwrap_or(timeout);
        seen.obs.start_deadline_in = Some(left.saturating_add(Duration::from_secs(1)));
        return;
    }
    let pods: Vec<std::sync::Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(seen.ns.as_str())
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::LABEL_TEST_NAME))
                    == Some(&crate::resources::names::label_value(&seen.name))
        })
        .collect();
    let mut objects: Vec<(&str, String)> = pods
        .iter()
        .filter_map(|p| Some(("Pod", p.metadata.name.clone()?)))
        .collect();
    objects.sort();
    if objects.is_empty() {
        objects = [Child::MasterJob, Child::WorkerJob]
            .into_iter()
            .map(|c| ("Job", c.name(&seen.name)))
            .collect();
    }
    let warnings = warnings(ctx, &seen.ns, &objects).await;
    let mut states: Vec<String> = pods.iter().map(|p| pod_state(p)).collect();
    states.sort();
    let failure = diagnose(timeout, &states, &warnings);
    info!(ns = %seen.ns, name = %seen.name, reason = failure.reason, "start deadline passed");
    seen.obs.start_failure = Some(failure);
}

/// The Warning Events about `objects` (kind, name) in `ns`, oldest first. A
/// failed read leaves them out (the pods' state still tells something).
async fn warnings(ctx: &Context, ns: &str, objects: &[(&str, String)]) -> Vec<Warning> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), ns);
    let mut out: Vec<(Timestamp, Warning)> = Vec::new();
    for (kind, name) in objects {
        let fields = format!("type=Warning,involvedObject.kind={kind},involvedObject.name={name}");
        match api.list(&ListParams::default().fields(&fields)).await {
            Ok(list) => out.extend(list.items.into_iter().map(|e| {
                let at = e
                    .last_timestamp
                    .as_ref()
                    .or(e.first_timestamp.as_ref())
                    .map(|t| t.0)
                    .or_else(|| e.event_time.as_ref().map(|t| t.0))
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                (
                    at,
                    Warning {
                        object: format!("{}/{name}", kind.to_ascii_lowercase()),
                        reason: e.reason.unwrap_or_default(),
                        message: e.message.unwrap_or_default(),
                    },
                )
            })),
            Err(e) => debug!(%ns, %name, error = %e, "reading Warning Events failed"),
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, w)| w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(object: &str, reason: &str, message: &str) -> Warning {
        Warning {
            object: object.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(600);

    #[test]
    fn a_missing_config_map_volume_is_a_config_error_named_by_the_kubelet() {
        let pods = ["pod t-master-abc Pending (locust-master ContainerCreating)".to_owned()];
        let f = diagnose(
            TIMEOUT,
            &pods,
            &[w(
                "pod/t-master-abc",
                "FailedMount",
                r#"MountVolume.SetUp failed for volume "locust-src" : configmap "no-such-files" not found"#,
            )],
        );
        assert_eq!(f.reason, reason::CONFIG_ERROR);
        for part in [
            "did not run within the start timeout (600s)",
            "ContainerCreating",
            r#"configmap "no-such-files" not found"#,
            "check that every ConfigMap and Secret",
        ] {
            assert!(f.message.contains(part), "{part:?} not in {}", f.message);
        }
    }

    #[test]
    fn the_most_actionable_cause_wins_and_unknown_causes_time_out() {
        let f = diagnose(
            TIMEOUT,
            &[],
            &[
                w("pod/p", "FailedScheduling", "0/1 nodes are available"),
                w("pod/p", "Failed", "Failed to pull image \"x\": not found"),
            ],
        );
        assert_eq!(f.reason, reason::IMAGE_PULL_ERROR);
        assert!(
            f.message.contains("no pod of the test exists"),
            "{}",
            f.message
        );
        let f = diagnose(TIMEOUT, &[], &[w("pod/p", "FailedScheduling", "0/1 nodes")]);
        assert_eq!(f.reason, reason::UNSCHEDULABLE);
        let f = diagnose(
            TIMEOUT,
            &["pod p Pending".into()],
            &[w("job/t-master", "FailedCreate", "exceeded quota")],
        );
        assert_eq!(f.reason, reason::START_TIMED_OUT);
        assert!(
            f.message
                .contains("job/t-master FailedCreate: exceeded quota")
        );
        // A FailedMount that is not about a missing object names no cause.
        let f = diagnose(
            TIMEOUT,
            &[],
            &[w("pod/p", "FailedMount", "timed out waiting")],
        );
        assert_eq!(f.reason, reason::START_TIMED_OUT);
        let f = diagnose(TIMEOUT, &[], &[]);
        assert_eq!(f.reason, reason::START_TIMED_OUT);
        assert!(!f.message.contains("Warning Events"));
    }

    #[test]
    fn only_the_newest_events_are_quoted() {
        let many: Vec<Warning> = (0..10)
            .map(|i| w("pod/p", "FailedMount", &format!("attempt {i}: timed out")))
            .collect();
        let f = diagnose(TIMEOUT, &[], &many);
        assert!(f.message.contains("attempt 9"));
        assert!(f.message.contains("attempt 7"));
        assert!(!f.message.contains("attempt 6"), "{}", f.message);
    }

    #[test]
    fn pod_state_names_the_waiting_containers() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t-worker-x"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "locust-worker", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}
            }]}
        }))
        .unwrap_or_default();
        assert_eq!(
            pod_state(&pod),
            "pod t-worker-x Pending (locust-worker ContainerCreating)"
        );
        let bare = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(pod_state(&bare), "pod p Pending");
    }
}
