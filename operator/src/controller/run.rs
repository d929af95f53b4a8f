//! Wires the reconciler to the API: one watch per kind (label-selected and
//! trimmed to what the reconciler reads, to keep memory small), shared by the
//! controller's triggers and the reconciler's caches. The LocustSchedule
//! controller ([`crate::schedule_controller`]) runs next to it, under the
//! same leadership and shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{LocustTest, Phase};
use crate::config::OperatorConfig;
use crate::health::{Readiness, poll_ready};
use crate::metrics::Metrics;
use crate::resources::{DISRUPTION_TARGET, labels};
use crate::schedule_controller;
use crate::test_metrics::TestMetrics;

use super::context::Context;
use super::reconcile::{error_policy, reconcile};

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles running at once. Each creates up to three children at once, so
/// at most three times as many writes are in flight: a burst of hundreds of
/// new tests then queues in the operator instead of overflowing the
/// apiserver's priority-and-fairness queues (429) and timing out (504), which
/// unbounded concurrency did at 1000 tests (see docs/performance.md).
pub const MAX_CONCURRENT_RECONCILES: u16 = 32;

/// Page size of the initial lists. A list page is decoded whole before the
/// objects are trimmed for the caches, and the allocator keeps much of that
/// transient memory: with kube's default of 500, an operator restarted over
/// 1000 tests (2000 pods with full specs) held 97 MiB, with 50 it held 53 MiB
/// (docs/performance.md); 100 keeps start-up short at that scale.
pub const LIST_PAGE_SIZE: u32 = 100;

/// Keeps only `keys` of a label or annotation map.
fn keep_keys(map: &mut BTreeMap<String, String>, keys: &[&str]) {
    map.retain(|k, _| keys.contains(&k.as_str()));
}

/// Drops what the reconciler never reads from a cached pod. It reads: name,
/// namespace, deletion timestamp, the labels of
/// [`labels::POD_LOOKUP_LABEL_KEYS`]; the phase, reason, message, pod IP, start time, each container's
/// name and state, and a `PodScheduled=False` condition. Extend this list
/// (and the trim) before reading more.
fn trim_pod(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(labels) = meta.labels.as_mut() {
        keep_keys(labels, &labels::POD_LOOKUP_LABEL_KEYS);
    }
    pod.spec = None;
    if let Some(status) = pod.status.as_mut() {
        status.host_ip = None;
        status.host_ips = None;
        status.pod_ips = None;
        status.qos_class = None;
        status.nominated_node_name = None;
        status.resource_claim_statuses = None;
        status.ephemeral_container_statuses = None;
        if let Some(conditions) = status.conditions.as_mut() {
            // Kept: why a pod cannot be scheduled, and that it was disrupted
            // (evicted, preempted), which tells a lost master from a finished one.
            conditions.retain(|c| {
                (c.type_ == "PodScheduled" && c.status == "False")
                    || (c.type_ == DISRUPTION_TARGET && c.status == "True")
            });
        }
        for cs in status
            .container_statuses
            .iter_mut()
            .chain(status.init_container_statuses.iter_mut())
            .flatten()
        {
            cs.image.clear();
            cs.image_id.clear();
            cs.container_id = None;
            cs.last_state = None;
            cs.allocated_resources = None;
            cs.allocated_resources_status = None;
            cs.resources = None;
            cs.user = None;
            cs.volume_mounts = None;
        }
    }
}

/// Drops what the reconciler never reads from a cached Job: the spec (with
/// its pod template), labels, annotations other than the spec hash, and the
/// status but for its conditions and counts. Ownership is kept (the
/// controller maps a Job to its test by it).
fn trim_job(job: &mut Job) {
    let meta = &mut job.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.finalizers = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        keep_keys(annotations, &[labels::SPEC_HASH_ANNOTATION]);
    }
    job.spec = None;
    if let Some(status) = job.status.as_mut() {
        status.uncounted_terminated_pods = None;
        status.completed_indexes = None;
        status.failed_indexes = None;
    }
}

/// Drops what the reconciler never reads from a cached Service's metadata
/// (it reads the owner and the spec hash annotation).
fn trim_service(service: &mut PartialObjectMeta<Service>) {
    let meta = &mut service.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.finalizers = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        keep_keys(annotations, &[labels::SPEC_HASH_ANNOTATION]);
    }
}

/// Aborts the tasks it holds when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Reports the cached tests' `locust_test_*` series
/// ([`crate::test_metrics`]) while it lives: while this replica reconciles.
struct ReportTests(TestMetrics);

impl ReportTests {
    fn new(series: &TestMetrics, tests: reflector::Store<LocustTest>) -> Self {
        series.set_source(move || tests.state());
        Self(series.clone())
    }
}

impl Drop for ReportTests {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// Runs the controller until `shutdown` resolves. Call only while holding the
/// leader lease (or with leader election off).
pub async fn run(
    client: Client,
    config: OperatorConfig,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = config.watched_namespace().map(str::to_owned);
    let ns = ns.as_deref();
    let owned = watcher::Config::default()
        .labels(labels::MANAGED_BY_SELECTOR)
        .page_size(LIST_PAGE_SIZE);

    let (tests, tests_w) = reflector::store::<LocustTest>();
    let tests_stream = watcher(
        api_for::<LocustTest>(&client, ns),
        watcher::Config::default().page_size(LIST_PAGE_SIZE),
    )
    .default_backoff()
    .modify(|t| t.managed_fields_mut().clear())
    .reflect(tests_w)
    .touched_objects();

    let (jobs, jobs_w) = reflector::store::<Job>();
    let jobs_stream = watcher(api_for::<Job>(&client, ns), owned.clone())
        .default_backoff()
        .modify(trim_job)
        .reflect(jobs_w)
        .touched_objects();

    let (services, services_w) = reflector::store();
    let services_stream = watcher(
        api_for::<PartialObjectMeta<Service>>(&client, ns),
        owned.clone(),
    )
    .default_backoff()
    .modify(trim_service)
    .reflect(services_w)
    .touched_objects();

    let (pods, pods_w) = reflector::store::<Pod>();
    let pods_stream = watcher(api_for::<Pod>(&client, ns), owned)
        .default_backoff()
        .modify(trim_pod)
        .reflect(pods_w)
        .touched_objects();

    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| "locust-k8s-operator".into());
    let stats_interval = config.stats_interval;
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        jobs: jobs.clone(),
        services: services.clone(),
        pods: pods.clone(),
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "locust-k8s-operator".into(),
                instance: Some(identity.clone()),
            },
        ),
        expectations: Default::default(),
        stats_interval,
        stats_timeout: crate::stats::DEFAULT_TIMEOUT,
        stats_reads: Default::default(),
        written: Default::default(),
        start_holds: Default::default(),
        error_events: Default::default(),
    });

    // Background tasks of this run end with it (the controller may be stopped
    // and started again in one process when the leader lease is lost).
    let mut background = AbortOnDrop(Vec::new());

    // The LocustSchedule controller, under the same leadership and shutdown.
    let shutdown = shutdown.shared();
    let (schedules_synced, schedules) = schedule_controller::run::controller(
        schedule_controller::run::Scope {
            client: client.clone(),
            namespace: ns.map(str::to_owned),
            instance: identity,
        },
        shutdown.clone(),
    );

    // Readiness: every cache has listed once (the schedule controller's too).
    {
        let (tests, jobs, services, pods) =
            (tests.clone(), jobs.clone(), services.clone(), pods.clone());
        let readiness = readiness.clone();
        background.0.push(tokio::spawn(async move {
            let ready = poll_ready(|| async {
                tests.wait_until_ready().await.is_ok()
                    && jobs.wait_until_ready().await.is_ok()
                    && services.wait_until_ready().await.is_ok()
                    && pods.wait_until_ready().await.is_ok()
                    && schedules_synced.clone().wait_for(|s| *s).await.is_ok()
            })
            .await;
            if ready {
                info!("caches synced");
                readiness.set_caches_synced(true);
            } else {
                warn!("a cache writer stopped before syncing");
            }
        }));
    }

    let _report_tests = ReportTests::new(metrics.tests_series(), tests.clone());

    // Tests-by-phase gauge, from the cache.
    {
        let tests = tests.clone();
        let metrics = metrics.clone();
        background.0.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let mut counts: BTreeMap<Phase, i64> = Phase::ALL.iter().map(|p| (*p, 0)).collect();
                for t in tests.state() {
                    let phase = t
                        .status
                        .as_ref()
                        .and_then(|s| s.phase)
                        .unwrap_or(Phase::Pending);
                    *counts.entry(phase).or_default() += 1;
                }
                metrics.set_tests_by_phase(&counts);
            }
        }));
    }

    let tests_controller = Controller::for_stream(tests_stream, tests)
        .with_config(ControllerConfig::default().concurrency(MAX_CONCURRENT_RECONCILES))
        .owns_stream(jobs_stream)
        .owns_stream(services_stream)
        .watches_stream(pods_stream, |pod: Pod| {
            let ns = pod.namespace()?;
            let test = pod.labels().get(labels::LABEL_TEST_NAME)?.clone();
            Some(ObjectRef::<LocustTest>::new(&test).within(&ns))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(test = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile loop error"),
            }
        });
    tokio::join!(tests_controller, schedules);
    info!("controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStatus, PodCondition, PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn labels_of(keys: &[&str]) -> Option<BTreeMap<String, String>> {
        Some(
            keys.iter()
                .map(|k| ((*k).to_owned(), "v".to_owned()))
                .collect(),
        )
    }

    fn owner() -> Option<Vec<OwnerReference>> {
        Some(vec![OwnerReference {
            kind: "LocustTest".into(),
            name: "t".into(),
            uid: "u".into(),
            controller: Some(true),
            ..OwnerReference::default()
        }])
    }

    #[test]
    fn a_trimmed_pod_keeps_what_the_reconciler_reads() {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("t-master-abc".into()),
                namespace: Some("ns".into()),
                generate_name: Some("t-master-".into()),
                labels: labels_of(&[
                    labels::LABEL_TEST_NAME,
                    labels::LABEL_MANAGED_BY,
                    labels::LABEL_COMPONENT,
                    "batch.kubernetes.io/job-name",
                ]),
                annotations: labels_of(&["a"]),
                owner_references: owner(),
                finalizers: Some(vec!["batch.kubernetes.io/job-tracking".into()]),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                reason: Some("Evicted".into()),
                pod_ip: Some("10.0.0.1".into()),
                host_ip: Some("10.1.0.1".into()),
                conditions: Some(vec![
                    PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..PodCondition::default()
                    },
                    PodCondition {
                        type_: DISRUPTION_TARGET.into(),
                        status: "True".into(),
                        reason: Some("EvictionByEvictionAPI".into()),
                        ..PodCondition::default()
                    },
                    PodCondition {
                        type_: "PodScheduled".into(),
                        status: "False".into(),
                        reason: Some("Unschedulable".into()),
                        ..PodCondition::default()
                    },
                ]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "locust".into(),
                    image: "locustio/locust:2.43.1".into(),
                    image_id: "sha256:abc".into(),
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning::default()),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        };
        trim_pod(&mut pod);
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.len(), 3);
        assert!(labels.contains_key(labels::LABEL_TEST_NAME));
        assert_eq!(pod.metadata.name.as_deref(), Some("t-master-abc"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert!(pod.metadata.owner_references.is_none() && pod.metadata.annotations.is_none());
        assert!(pod.spec.is_none());
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.reason.as_deref(), Some("Evicted"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.1"));
        assert!(status.host_ip.is_none());
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].type_, DISRUPTION_TARGET);
        assert_eq!(conditions[1].reason.as_deref(), Some("Unschedulable"));
        let cs = &status.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.name, "locust");
        assert!(cs.state.as_ref().unwrap().running.is_some());
        assert!(cs.image.is_empty() && cs.image_id.is_empty());
        // The pod still classifies and maps to its test.
        assert!(super::super::pod_health::classify(&pod).is_some());
    }

    #[test]
    fn a_trimmed_job_keeps_owner_hash_and_conditions() {
        let mut job = Job {
            metadata: ObjectMeta {
                name: Some("t-master".into()),
                labels: labels_of(&[labels::LABEL_TEST_NAME]),
                annotations: labels_of(&[labels::SPEC_HASH_ANNOTATION, "other"]),
                owner_references: owner(),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec::default()),
            status: Some(JobStatus {
                active: Some(1),
                conditions: Some(vec![JobCondition {
                    type_: "Complete".into(),
                    status: "True".into(),
                    ..JobCondition::default()
                }]),
                uncounted_terminated_pods: Some(UncountedTerminatedPods::default()),
                ..JobStatus::default()
            }),
        };
        trim_job(&mut job);
        assert!(job.spec.is_none() && job.metadata.labels.is_none());
        let annotations = job.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            [labels::SPEC_HASH_ANNOTATION]
        );
        assert_eq!(job.metadata.owner_references, owner());
        let status = job.status.as_ref().unwrap();
        assert_eq!(status.active, Some(1));
        assert_eq!(status.conditions.as_ref().unwrap()[0].type_, "Complete");
        assert!(status.uncounted_terminated_pods.is_none());

        let mut service = PartialObjectMeta::<Service> {
            types: None,
            metadata: ObjectMeta {
                labels: labels_of(&["x"]),
                annotations: labels_of(&[labels::SPEC_HASH_ANNOTATION, "y"]),
                owner_references: owner(),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        };
        trim_service(&mut service);
        assert!(service.metadata.labels.is_none());
        assert_eq!(service.metadata.annotations.as_ref().unwrap().len(), 1);
        assert_eq!(service.metadata.owner_references, owner());
    }
}
