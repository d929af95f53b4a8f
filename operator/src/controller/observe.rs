//! The "observe" step of a reconcile: what the watch caches (and this
//! process's own memory of its recent writes) say about a test, its children
//! and its pods, as an [`Observed`] for the phase machine. No API call.
//! Also the start hold: a first start is written once, with every pod running.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;

use crate::api::{LocustTest, LocustTestStatus, Phase};
use crate::resources::{self, labels};

use super::context::{Context, Error};
use super::model::{Child, owned_by};
use super::model::{JobOutcome, Observed};
use super::pod_health;

/// A test as the observe step saw it; the later steps add to `obs`.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub ns: String,
    pub name: String,
    pub uid: Option<String>,
    /// The status this process last wrote when the cache does not show it
    /// yet, else the cached one.
    pub status: Option<LocustTestStatus>,
    /// Hash of the test's current spec.
    pub spec_hash: String,
    pub obs: Observed,
    /// IP of the running master pod, if one runs.
    pub master_ip: Option<IpAddr>,
}

impl Seen {
    /// Whether the test is over (`Succeeded` or `Failed`).
    pub fn terminal(&self) -> bool {
        self.phase().is_some_and(Phase::is_terminal)
    }

    /// Whether the test has been `Running` (its start was written).
    pub fn started(&self) -> bool {
        self.phase() == Some(Phase::Running)
    }

    fn phase(&self) -> Option<Phase> {
        self.status.as_ref().and_then(|s| s.phase)
    }
}

/// The observe step. Fails when an object under a child's name is not owned
/// by the test (never adopted).
pub(super) fn observe(ctx: &Context, test: &LocustTest, ns: String) -> Result<Seen, Error> {
    let name = test.name_any();
    let uid = test.metadata.uid.clone();
    let uid_ref = uid.as_deref();
    let status = ctx
        .written
        .current(uid_ref, test.metadata.resource_version.as_deref())
        .or_else(|| test.status.clone());

    let job = |c: Child| ctx.jobs.get(&ObjectRef::new(&c.name(&name)).within(&ns));
    let master_job = job(Child::MasterJob);
    let worker_job = job(Child::WorkerJob);
    let service = ctx
        .services
        .get(&ObjectRef::new(&Child::MasterService.name(&name)).within(&ns));
    // In this order for the conflict check and the spec hash.
    let metas = [
        (Child::MasterJob, master_job.as_ref().map(|j| &j.metadata)),
        (Child::WorkerJob, worker_job.as_ref().map(|j| &j.metadata)),
        (Child::MasterService, service.as_ref().map(|s| &s.metadata)),
    ];
    for (child, meta) in &metas {
        if meta.is_some() {
            ctx.expectations.seen(uid_ref, *child);
        }
    }
    check_owned(&metas, uid_ref, &name)?;

    let exists = |c: Child, cached: bool| cached || ctx.expectations.expected(uid_ref, c);
    let obs = Observed {
        service_exists: exists(Child::MasterService, service.is_some()),
        master_job_exists: exists(Child::MasterJob, master_job.is_some()),
        worker_job_exists: exists(Child::WorkerJob, worker_job.is_some()),
        children_spec_hash: children_spec_hash(&metas),
        ..Observed::default()
    };

    Ok(Seen {
        spec_hash: labels::spec_hash(&test.spec),
        ns,
        name,
        uid,
        status,
        obs,
        master_ip: None,
    })
}

/// The second half of the observe step, run after the children are ensured
/// (pods come from the Jobs, so they are looked at once the Jobs exist): what
/// the caches say about the test's pods and how its Jobs ended.
pub(super) fn observe_pods(ctx: &Context, seen: &mut Seen) {
    let (ns, name) = (seen.ns.as_str(), seen.name.as_str());
    let job = |c: Child| ctx.jobs.get(&ObjectRef::new(&c.name(name)).within(ns));
    let (master_job, worker_job) = (job(Child::MasterJob), job(Child::WorkerJob));
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| is_pod_of(p, ns, name))
        .collect();
    seen.master_ip = fill_pods(
        &mut seen.obs,
        &pods,
        master_job.as_deref(),
        worker_job.as_deref(),
    );
}

/// A conflict for the first child in `metas` that exists without a
/// controller reference to the test `uid`.
fn check_owned(
    metas: &[(Child, Option<&ObjectMeta>)],
    uid: Option<&str>,
    test_name: &str,
) -> Result<(), Error> {
    match metas
        .iter()
        .find(|(_, meta)| meta.is_some_and(|m| !owned_by(m, uid)))
    {
        Some((child, _)) => Err(Error::NameConflict {
            kind: child.kind(),
            name: child.name(test_name),
        }),
        None => Ok(()),
    }
}

/// The spec hash the children were built from (their annotation).
fn children_spec_hash(metas: &[(Child, Option<&ObjectMeta>)]) -> Option<String> {
    metas.iter().find_map(|(_, m)| {
        m.as_ref()?
            .annotations
            .as_ref()?
            .get(labels::SPEC_HASH_ANNOTATION)
            .cloned()
    })
}

/// Whether `pod` is a pod of the test `ns`/`name` created by this operator.
fn is_pod_of(pod: &Pod, ns: &str, name: &str) -> bool {
    let label = |key: &str| pod.labels().get(key).map(String::as_str);
    pod.metadata.namespace.as_deref() == Some(ns)
        && label(labels::LABEL_TEST_NAME) == Some(resources::names::label_value(name).as_str())
        && label(labels::LABEL_MANAGED_BY) == Some(labels::OPERATOR_NAME)
}

/// Fills what `obs` says about the pods and Jobs, and returns the IP of the
/// running master pod, if any.
fn fill_pods(
    obs: &mut Observed,
    pods: &[Arc<Pod>],
    master_job: Option<&Job>,
    worker_job: Option<&Job>,
) -> Option<IpAddr> {
    let (master_pods, worker_pods): (Vec<&Pod>, Vec<&Pod>) =
        pods.iter().map(Arc::as_ref).partition(|p| {
            p.labels().get(labels::LABEL_COMPONENT).map(String::as_str) == Some("master")
        });
    obs.master_running_since = master_pods.iter().filter_map(|p| running_since(p)).min();
    obs.master_lost = master_pods.iter().find_map(|p| pod_health::lost(p));
    obs.running_workers = i32::try_from(
        worker_pods
            .iter()
            .filter(|p| running_since(p).is_some())
            .count(),
    )
    .unwrap_or(i32::MAX);
    obs.health = pod_health::assess(pods.iter().map(|p| p.as_ref()));
    obs.worker_outcome = worker_job.and_then(job_outcome);
    obs.master_outcome = master_job.and_then(job_outcome).map(|o| match o {
        JobOutcome::Failed { reason, message } => {
            let message = match master_exit_detail(&master_pods) {
                Some(d) if message.is_empty() => d,
                Some(d) => format!("{message}; {d}"),
                None => message,
            };
            JobOutcome::Failed { reason, message }
        }
        other => other,
    });
    master_pods.iter().find_map(|p| {
        running_since(p)?;
        p.status.as_ref()?.pod_ip.as_deref()?.parse::<IpAddr>().ok()
    })
}

/// How a finished Job ended, `None` while it runs.
fn job_outcome(job: &Job) -> Option<JobOutcome> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    for c in conds {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => return Some(JobOutcome::Complete),
            "Failed" | "FailureTarget" => {
                return Some(JobOutcome::Failed {
                    reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
                    message: c.message.clone().unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    None
}

/// When the pod's containers started running, if it runs (and is not
/// being deleted).
fn running_since(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let started = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
        .map(|t| t.0)
        .min();
    started
        .or_else(|| status.start_time.as_ref().map(|t| t.0))
        .or(Some(Timestamp::now()))
}

/// The master container's non-zero exit code, as words.
fn master_exit_detail(pods: &[&Pod]) -> Option<String> {
    pods.iter().find_map(|p| {
        p.status
            .as_ref()?
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.terminated.as_ref())
            .filter(|t| t.exit_code != 0)
            .map(|t| format!("master container exited with code {}", t.exit_code))
    })
}

/// Whether the test is starting and only some of its pods run, with nothing
/// wrong: its first start is then held back (see [`START_HOLD`]).
pub(super) fn partial_start(seen: &Seen, replicas: i32) -> bool {
    let obs = &seen.obs;
    let first_pod_runs = obs.master_running_since.is_some() || obs.running_workers > 0;
    let all_pods_run = obs.master_running_since.is_some() && obs.running_workers >= replicas;
    !seen.terminal()
        && seen.phase().is_none_or(|p| p == Phase::Pending)
        && Child::ALL.iter().all(|c| c.exists(obs))
        && obs.health.is_none()
        && obs.master_outcome.is_none()
        && obs.worker_outcome.is_none()
        && first_pod_runs
        && !all_pods_run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::memory::StartHolds;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn pod(component: &str, running_at: Option<i64>, ip: &str) -> Arc<Pod> {
        let state = match running_at {
            Some(s) => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(Timestamp::from_second(s).unwrap())),
                }),
                ..ContainerState::default()
            },
            None => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            },
        };
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(format!("t-{component}-x")),
                namespace: Some("ns".into()),
                labels: Some(BTreeMap::from([
                    (labels::LABEL_TEST_NAME.to_owned(), "t".to_owned()),
                    (
                        labels::LABEL_MANAGED_BY.to_owned(),
                        labels::OPERATOR_NAME.to_owned(),
                    ),
                    (labels::LABEL_COMPONENT.to_owned(), component.to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(
                    if running_at.is_some() {
                        "Running"
                    } else {
                        "Failed"
                    }
                    .into(),
                ),
                pod_ip: Some(ip.into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "locust".into(),
                    state: Some(state),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn job(type_: &str, reason: Option<&str>) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(vec![
                    JobCondition {
                        type_: "Suspended".into(),
                        status: "True".into(),
                        ..JobCondition::default()
                    },
                    JobCondition {
                        type_: type_.into(),
                        status: "True".into(),
                        reason: reason.map(Into::into),
                        ..JobCondition::default()
                    },
                ]),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn jobs_end_complete_or_failed() {
        assert_eq!(job_outcome(&Job::default()), None);
        assert_eq!(
            job_outcome(&job("Complete", None)),
            Some(JobOutcome::Complete)
        );
        assert_eq!(
            job_outcome(&job("SuccessCriteriaMet", None)),
            Some(JobOutcome::Complete)
        );
        assert_eq!(
            job_outcome(&job("FailureTarget", Some("PodFailurePolicy"))),
            Some(JobOutcome::Failed {
                reason: "PodFailurePolicy".into(),
                message: String::new()
            })
        );
        assert_eq!(
            job_outcome(&job("Failed", None)),
            Some(JobOutcome::Failed {
                reason: "Failed".into(),
                message: String::new()
            })
        );
    }

    #[test]
    fn pods_give_running_counts_the_master_ip_and_its_exit_code() {
        let pods = vec![
            pod("master", Some(1_800_000_010), "10.0.0.1"),
            pod("worker", Some(1_800_000_020), "10.0.0.2"),
            pod("worker", None, "10.0.0.3"),
        ];
        assert!(pods.iter().all(|p| is_pod_of(p, "ns", "t")));
        assert!(!is_pod_of(&pods[0], "other", "t"));
        assert!(!is_pod_of(&pods[0], "ns", "t2"));
        let mut obs = Observed::default();
        let ip = fill_pods(
            &mut obs,
            &pods,
            Some(&job("Failed", Some("BackoffLimitExceeded"))),
            None,
        );
        assert_eq!(ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            obs.master_running_since,
            Timestamp::from_second(1_800_000_010).ok()
        );
        assert_eq!(obs.running_workers, 1);
        assert!(obs.health.is_some(), "a failed worker container");
        assert_eq!(obs.worker_outcome, None);
        // The master still runs: its Job's failure has no exit code to add.
        assert_eq!(
            obs.master_outcome,
            Some(JobOutcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: String::new()
            })
        );
        // An exited master: no IP to read, its exit code joins the Job's failure.
        let mut obs = Observed::default();
        let ip = fill_pods(
            &mut obs,
            &[pod("master", None, "10.0.0.1")],
            Some(&job("Failed", Some("BackoffLimitExceeded"))),
            Some(&job("Complete", None)),
        );
        assert_eq!(ip, None);
        assert_eq!(obs.master_running_since, None);
        assert_eq!(obs.worker_outcome, Some(JobOutcome::Complete));
        assert_eq!(
            obs.master_outcome,
            Some(JobOutcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "master container exited with code 137".into()
            })
        );
    }

    #[test]
    fn foreign_children_conflict_and_the_hash_comes_from_the_children() {
        let owned = ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                controller: Some(true),
                uid: "u1".into(),
                ..OwnerReference::default()
            }]),
            annotations: Some(BTreeMap::from([(
                labels::SPEC_HASH_ANNOTATION.to_owned(),
                "h1".to_owned(),
            )])),
            ..ObjectMeta::default()
        };
        let foreign = ObjectMeta::default();
        let metas = [
            (Child::MasterJob, None),
            (Child::WorkerJob, Some(&owned)),
            (Child::MasterService, Some(&foreign)),
        ];
        assert_eq!(children_spec_hash(&metas).as_deref(), Some("h1"));
        match check_owned(&metas, Some("u1"), "t") {
            Err(Error::NameConflict { kind, name }) => {
                assert_eq!((kind, name.as_str()), ("Service", "t-master"));
            }
            other => panic!("{other:?}"),
        }
        assert!(check_owned(&metas[..2], Some("u1"), "t").is_ok());
        assert!(check_owned(&metas[..2], Some("u2"), "t").is_err());
        assert_eq!(children_spec_hash(&[(Child::MasterJob, None)]), None);
    }

    fn seen(phase: Option<Phase>, obs: Observed) -> Seen {
        Seen {
            ns: "ns".into(),
            name: "t".into(),
            uid: Some("u1".into()),
            status: phase.map(|p| LocustTestStatus {
                phase: Some(p),
                ..LocustTestStatus::default()
            }),
            spec_hash: "h1".into(),
            obs,
            master_ip: None,
        }
    }

    #[test]
    fn only_a_clean_partial_first_start_is_held() {
        let created = Observed {
            service_exists: true,
            master_job_exists: true,
            worker_job_exists: true,
            ..Observed::default()
        };
        let master_only = Observed {
            master_running_since: Some(Timestamp::now()),
            ..created.clone()
        };
        assert!(partial_start(&seen(None, master_only.clone()), 2));
        assert!(partial_start(
            &seen(Some(Phase::Pending), master_only.clone()),
            2
        ));
        let workers_only = Observed {
            running_workers: 1,
            ..created.clone()
        };
        assert!(partial_start(&seen(None, workers_only), 2));
        // Nothing runs, everything runs, or already started: nothing to hold.
        assert!(!partial_start(&seen(None, created.clone()), 2));
        let all = Observed {
            running_workers: 2,
            ..master_only.clone()
        };
        assert!(!partial_start(&seen(None, all), 2));
        assert!(!partial_start(
            &seen(Some(Phase::Running), master_only.clone()),
            2
        ));
        assert!(!partial_start(
            &seen(Some(Phase::Failed), master_only.clone()),
            2
        ));
        // Something is wrong: written at once.
        let failed_workers = Observed {
            worker_outcome: Some(JobOutcome::Complete),
            ..master_only.clone()
        };
        assert!(!partial_start(&seen(None, failed_workers), 2));
        let missing = Observed {
            service_exists: false,
            ..master_only
        };
        assert!(!partial_start(&seen(None, missing), 2));
    }

    #[test]
    fn a_partial_start_is_held_for_a_bounded_time() {
        let holds = StartHolds::default();
        let hold = Duration::from_millis(200);
        assert_eq!(holds.check(Some("u1"), false, hold), None);
        assert!(holds.is_empty());
        let left = holds.check(Some("u1"), true, hold).unwrap();
        assert!(left <= hold && left > Duration::ZERO);
        // Counted from the first partial reconcile, not the latest.
        std::thread::sleep(Duration::from_millis(60));
        let later = holds.check(Some("u1"), true, hold).unwrap();
        assert!(later < left, "{later:?} < {left:?}");
        std::thread::sleep(hold);
        assert_eq!(holds.check(Some("u1"), true, hold), None, "expired");
        assert_eq!(holds.len(), 1, "kept so it is not held again");
        // All pods run: forgotten.
        assert_eq!(holds.check(Some("u1"), false, hold), None);
        assert!(holds.is_empty());
        assert_eq!(holds.check(None, true, hold), None);
        holds.check(Some("u2"), true, hold);
        holds.forget(Some("u2"));
        assert!(holds.is_empty());
    }
}
