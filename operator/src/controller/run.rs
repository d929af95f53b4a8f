//! Wires the reconciler to the API: one watch per kind (label-selected and
//! trimmed to what the reconciler reads, to keep memory small), shared by the
//! controller's triggers and the reconciler's caches.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
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
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::resources::labels;

use super::reconcile::{Context, error_policy, reconcile};

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Drops what the reconciler never reads from a cached pod.
fn trim_pod(pod: &mut Pod) {
    pod.managed_fields_mut().clear();
    pod.annotations_mut().clear();
    pod.spec = None;
}

/// Drops the pod template and the rest of the spec from a cached Job.
fn trim_job(job: &mut Job) {
    job.managed_fields_mut().clear();
    job.spec = None;
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
    let owned = watcher::Config::default().labels(labels::MANAGED_BY_SELECTOR);

    let (tests, tests_w) = reflector::store::<LocustTest>();
    let tests_stream = watcher(
        api_for::<LocustTest>(&client, ns),
        watcher::Config::default(),
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
    .modify(|s| s.managed_fields_mut().clear())
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
                instance: Some(identity),
            },
        ),
        expectations: Mutex::new(HashMap::new()),
        stats_interval,
        stats_timeout: crate::stats::DEFAULT_TIMEOUT,
        stats_reads: Mutex::new(HashMap::new()),
    });

    // Background tasks of this run end with it (the controller may be stopped
    // and started again in one process when the leader lease is lost).
    let mut background = AbortOnDrop(Vec::new());

    // Readiness: every cache has listed once. A store's readiness signal wakes
    // only its most recent waiter (the controller also waits on the LocustTest
    // store), so poll it in short slices instead of awaiting it once.
    {
        let (tests, jobs, services, pods) =
            (tests.clone(), jobs.clone(), services.clone(), pods.clone());
        let readiness = readiness.clone();
        background.0.push(tokio::spawn(async move {
            let slice = Duration::from_millis(25);
            loop {
                let ready = async {
                    tests.wait_until_ready().await.is_ok()
                        && jobs.wait_until_ready().await.is_ok()
                        && services.wait_until_ready().await.is_ok()
                        && pods.wait_until_ready().await.is_ok()
                };
                match tokio::time::timeout(slice, ready).await {
                    Ok(true) => {
                        info!("caches synced");
                        readiness.set_caches_synced(true);
                        return;
                    }
                    Ok(false) => {
                        warn!("a cache writer stopped before syncing");
                        return;
                    }
                    Err(_) => {}
                }
            }
        }));
    }

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

    Controller::for_stream(tests_stream, tests)
        .with_config(ControllerConfig::default())
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
        })
        .await;
    info!("controller stopped");
}
