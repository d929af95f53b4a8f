//! The reconcile function: read from the watch caches, build the children with
//! the pure builders, create the ones that are missing, derive the status with
//! the pure phase machine, and write status and Events only on change.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::api::{LocustTest, LocustTestStatus, Phase, event_reason};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::resources::{self, labels};
use crate::stats;

use super::pod_health;
use super::state::{self, JobOutcome, Observed, StatsObservation, TestView};

/// Reconcile failures. Each has a `reason()` used for Events and metric labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("LocustTest has no namespace")]
    MissingNamespace,
    #[error("cannot build the test's resources: {0}")]
    Build(#[from] resources::ResourceError),
    #[error("creating {kind} {name}: {source}")]
    Create {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} already exists and is not owned by this LocustTest")]
    NameConflict { kind: &'static str, name: String },
    #[error("updating status: {0}")]
    PatchStatus(#[source] kube::Error),
}

impl Error {
    /// CamelCase reason for Events and the errors metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::Build(_) => "InvalidSpec",
            Error::Create { .. } => "CreateFailed",
            Error::NameConflict { .. } => "NameConflict",
            Error::PatchStatus(_) => "StatusUpdateFailed",
        }
    }
}

/// Shared state of the reconciler.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub jobs: Store<Job>,
    pub services: Store<PartialObjectMeta<Service>>,
    pub pods: Store<Pod>,
    pub metrics: Metrics,
    /// One recorder for every Event, so repeats of an Event become updates of
    /// its series (kube's event cache) instead of new objects.
    pub recorder: Recorder,
    /// Children created by this process and not yet seen in the caches
    /// (controller "expectations"): avoids duplicate create calls while a
    /// watch event is in flight.
    pub expectations: Mutex<HashMap<(String, String), Instant>>,
    /// Least time between two reads of a master's statistics (and between two
    /// status writes of live numbers).
    pub stats_interval: Duration,
    /// Time limit of one HTTP request to a master.
    pub stats_timeout: Duration,
    /// When each test's master is next due to be read (by `(namespace, name)`).
    pub stats_reads: Mutex<HashMap<(String, String), StatsSchedule>>,
    /// The last status this process wrote per test (by uid, so a test
    /// recreated under the same name starts afresh) until the watch cache
    /// shows it: a reconcile triggered by a child's
    /// event may run before the test's own watch event of that write
    /// arrives, and must neither write the same status again (a no-op
    /// write) nor publish the same transition Event twice.
    pub written: WrittenStatuses,
    /// Tests whose first start is being held back (see [`START_HOLD`]).
    pub start_holds: StartHolds,
}

/// How long the first start of a test may be held back while only some of
/// its pods run (the master without all its workers, or workers before the
/// master): the start is then written once, with every pod running, instead
/// of once per pod. Phase `Running` shows at most this much later than the
/// master pod started (`status.startTime` is still the master's start).
pub const START_HOLD: Duration = Duration::from_secs(2);

/// When this process began holding back each test's first start, by uid.
#[derive(Debug, Default)]
pub struct StartHolds(Mutex<HashMap<String, Instant>>);

impl StartHolds {
    /// With `partial` (only some of the test's pods run, none has failed),
    /// the time left to hold the status write, counted from the first such
    /// reconcile, or `None` once `hold` has passed; without `partial`, `None`
    /// (and the test is forgotten).
    pub fn check(&self, uid: Option<&str>, partial: bool, hold: Duration) -> Option<Duration> {
        let uid = uid?;
        let mut map = self.0.lock().ok()?;
        if !partial {
            map.remove(uid);
            return None;
        }
        let since = *map.entry(uid.to_owned()).or_insert_with(Instant::now);
        hold.checked_sub(since.elapsed()).filter(|d| !d.is_zero())
    }

    /// Forgets the test `uid` (it is being deleted).
    pub fn forget(&self, uid: Option<&str>) {
        if let (Some(uid), Ok(mut map)) = (uid, self.0.lock()) {
            map.remove(uid);
        }
    }

    /// Tests with an entry.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether no test has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A status written by this process.
#[derive(Clone, Debug)]
struct WrittenStatus {
    /// resourceVersion of the test in the write's response.
    resource_version: Option<String>,
    /// The status written.
    status: LocustTestStatus,
    /// When it was written.
    at: Instant,
}

/// The statuses this process wrote that the watch cache may not show yet
/// (see [`Context::written`]), by test uid.
#[derive(Debug, Default)]
pub struct WrittenStatuses(Mutex<HashMap<String, WrittenStatus>>);

impl WrittenStatuses {
    /// The status last written for the test `uid`, while the cached test (at
    /// resourceVersion `cached_rv`) may not include it yet; `None` once the
    /// cache shows the write's resourceVersion, or after [`WRITTEN_TTL`].
    pub fn current(&self, uid: Option<&str>, cached_rv: Option<&str>) -> Option<LocustTestStatus> {
        let uid = uid?;
        let mut map = self.0.lock().ok()?;
        map.retain(|_, w| w.at.elapsed() < WRITTEN_TTL);
        let caught_up = map.get(uid).is_some_and(|w| {
            w.resource_version.is_none() || w.resource_version.as_deref() == cached_rv
        });
        if caught_up {
            map.remove(uid);
            return None;
        }
        map.get(uid).map(|w| w.status.clone())
    }

    /// Records that `status` was written for test `uid`, answered with
    /// resourceVersion `rv`.
    pub fn record(&self, uid: Option<&str>, rv: Option<String>, status: LocustTestStatus) {
        let Some(uid) = uid else {
            return;
        };
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                uid.to_owned(),
                WrittenStatus {
                    resource_version: rv,
                    status,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Forgets the test `uid` (it is being deleted).
    pub fn forget(&self, uid: Option<&str>) {
        if let (Some(uid), Ok(mut map)) = (uid, self.0.lock()) {
            map.remove(uid);
        }
    }

    /// Tests with an entry.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether no test has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Default of [`Context::stats_interval`].
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// How long a written status stands in for the cached one when the cache
/// never shows the write's resourceVersion (a later change of the test, by
/// anyone, superseded it; only this operator writes the status, so the
/// written status is still the current one).
const WRITTEN_TTL: Duration = Duration::from_secs(60);

impl Context {
    fn expected(&self, ns: &str, name: &str) -> bool {
        let Ok(mut map) = self.expectations.lock() else {
            return false;
        };
        map.retain(|_, t| t.elapsed() < EXPECTATION_TTL);
        map.contains_key(&(ns.to_owned(), name.to_owned()))
    }

    fn expect(&self, ns: &str, name: &str) {
        if let Ok(mut map) = self.expectations.lock() {
            map.insert((ns.to_owned(), name.to_owned()), Instant::now());
        }
    }

    /// `None` when a read is due now, else the time until it is.
    fn stats_read_due_in(&self, ns: &str, name: &str) -> Option<Duration> {
        let map = self.stats_reads.lock().ok()?;
        let left = map
            .get(&(ns.to_owned(), name.to_owned()))?
            .at
            .saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Records a read that just ended and returns the time until the next.
    fn stats_read_done(&self, ns: &str, name: &str, under_way: bool) -> Duration {
        let Ok(mut map) = self.stats_reads.lock() else {
            return self.stats_interval;
        };
        let key = (ns.to_owned(), name.to_owned());
        let (delay, under_way) = next_stats_delay(map.get(&key), under_way, self.stats_interval);
        map.insert(
            key,
            StatsSchedule {
                at: Instant::now() + delay,
                delay,
                under_way,
            },
        );
        delay
    }

    fn forget_stats(&self, ns: &str, name: &str) {
        if let Ok(mut map) = self.stats_reads.lock() {
            map.remove(&(ns.to_owned(), name.to_owned()));
        }
    }

    /// The status this process last wrote for the test, while the cached
    /// test (at `cached_rv`) may not include it yet; `None` once the cache
    /// shows the write (or after [`WRITTEN_TTL`]).
    fn observed(&self, ns: &str, name: &str) {
        if let Ok(mut map) = self.expectations.lock() {
            map.remove(&(ns.to_owned(), name.to_owned()));
        }
    }
}

fn owned_by(meta: &kube::api::ObjectMeta, uid: Option<&str>) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

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

fn master_exit_detail(pods: &[Arc<Pod>]) -> Option<String> {
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

async fn publish(ctx: &Context, test: &LocustTest, warning: bool, reason: &str, note: String) {
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &test.object_ref(&())).await {
        warn!(error = %e, reason, "publishing an Event failed");
    }
}

/// When a test's master statistics are next read.
#[derive(Clone, Copy, Debug)]
pub struct StatsSchedule {
    at: Instant,
    delay: Duration,
    under_way: bool,
}

/// First retry after a read that did not find the run under way: a master
/// pod runs a moment before Locust listens and before its users are spawned,
/// and a short run (`--run-time 10s`) would otherwise show no live numbers.
const FIRST_STATS_RETRY: Duration = Duration::from_secs(1);

/// Whether a read found the run under way (Locust past `ready` and
/// `spawning`): from then on the master is read once per interval.
fn run_under_way(read: &StatsObservation) -> bool {
    match read {
        StatsObservation::Read { live, .. } => live
            .state
            .as_deref()
            .is_some_and(|s| !matches!(s, "ready" | "spawning")),
        StatsObservation::Failed { .. } => false,
    }
}

/// The delay until the next read, and whether a read has found the run under
/// way. A read every `interval`; until one finds the run under way (the
/// master not listening yet, or still `ready`/`spawning`), the next read comes
/// after 1 s, 2 s, 4 s, … up to `interval`: at most a few extra reads per
/// test, and none afterwards.
fn next_stats_delay(
    prev: Option<&StatsSchedule>,
    under_way: bool,
    interval: Duration,
) -> (Duration, bool) {
    if under_way || prev.is_some_and(|p| p.under_way) {
        return (interval, true);
    }
    let delay = prev.map_or(FIRST_STATS_RETRY, |p| p.delay.saturating_mul(2));
    (delay.min(interval), false)
}

/// Reads the master at `ip` on the web port (under `webUI.basePath`).
async fn read_master_stats(ctx: &Context, test: &LocustTest, ip: IpAddr) -> StatsObservation {
    let port = u16::try_from(resources::command::WEB_PORT).unwrap_or(8089);
    let addr = SocketAddr::new(ip, port);
    match stats::read_master(addr, &test.spec.web_base_path(), ctx.stats_timeout).await {
        Ok(reading) => {
            debug!(%addr, state = ?reading.stats.state, "read master statistics");
            StatsObservation::Read {
                live: reading.stats.live(),
                workers: reading
                    .stats
                    .worker_count
                    .and_then(|w| i32::try_from(w).ok()),
                final_result: reading.final_result.map(Box::new),
            }
        }
        Err(e) => {
            debug!(%addr, error = %e, "reading master statistics failed");
            StatsObservation::Failed {
                reason: e.reason(),
                message: e.to_string(),
            }
        }
    }
}

/// One reconcile of one LocustTest.
pub async fn reconcile(test: Arc<LocustTest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile_started();
    let result = reconcile_inner(&test, &ctx).await;
    timer.finish();
    result
}

async fn reconcile_inner(test: &LocustTest, ctx: &Context) -> Result<Action, Error> {
    let ns = test.namespace().ok_or(Error::MissingNamespace)?;
    let name = test.name_any();
    if test.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children; nothing to do.
        ctx.forget_stats(&ns, &name);
        ctx.written.forget(test.metadata.uid.as_deref());
        ctx.start_holds.forget(test.metadata.uid.as_deref());
        return Ok(Action::await_change());
    }
    let uid = test.metadata.uid.as_deref();
    // Our own last write when the cache has not caught up with it yet.
    let own = ctx
        .written
        .current(uid, test.metadata.resource_version.as_deref());
    let status = own.as_ref().or(test.status.as_ref());
    let terminal = status.and_then(|s| s.phase).is_some_and(Phase::is_terminal);
    let spec_hash = labels::spec_hash(&test.spec);

    let master_name = resources::names::master_job_name(&name);
    let worker_name = resources::names::worker_job_name(&name);
    let service_name = resources::names::service_name(&name);

    let master_job = ctx.jobs.get(&ObjectRef::new(&master_name).within(&ns));
    let worker_job = ctx.jobs.get(&ObjectRef::new(&worker_name).within(&ns));
    let service = ctx.services.get(&ObjectRef::new(&service_name).within(&ns));

    // Foreign objects under our names are a conflict, never adopted.
    for (kind, n, meta) in [
        (
            "Job",
            &master_name,
            master_job.as_ref().map(|j| &j.metadata),
        ),
        (
            "Job",
            &worker_name,
            worker_job.as_ref().map(|j| &j.metadata),
        ),
        (
            "Service",
            &service_name,
            service.as_ref().map(|s| &s.metadata),
        ),
    ] {
        if let Some(meta) = meta {
            ctx.observed(&ns, n);
            if !owned_by(meta, uid) {
                return Err(Error::NameConflict {
                    kind,
                    name: n.clone(),
                });
            }
        }
    }

    let children_hash = [
        master_job.as_ref().map(|j| &j.metadata),
        worker_job.as_ref().map(|j| &j.metadata),
        service.as_ref().map(|s| &s.metadata),
    ]
    .into_iter()
    .flatten()
    .find_map(|m| {
        m.annotations
            .as_ref()?
            .get(labels::SPEC_HASH_ANNOTATION)
            .cloned()
    });

    let mut obs = Observed {
        service_exists: service.is_some() || ctx.expected(&ns, &service_name),
        master_job_exists: master_job.is_some() || ctx.expected(&ns, &master_name),
        worker_job_exists: worker_job.is_some() || ctx.expected(&ns, &worker_name),
        children_spec_hash: children_hash.clone(),
        ..Observed::default()
    };

    let all_exist = obs.service_exists && obs.master_job_exists && obs.worker_job_exists;
    if !terminal && !all_exist {
        let drifted = children_hash.as_deref().is_some_and(|h| h != spec_hash);
        let was_created = status.is_some_and(|s| s.phase.is_some());
        let mut missing = Vec::new();
        if !obs.service_exists {
            missing.push(("Service", "master Service", service_name.clone()));
        }
        if !obs.master_job_exists {
            missing.push(("Job", "master Job", master_name.clone()));
        }
        if !obs.worker_job_exists {
            missing.push(("Job", "worker Job", worker_name.clone()));
        }
        if drifted {
            obs.missing_not_recreated = missing.iter().map(|m| m.1.to_owned()).collect();
        } else {
            let children = resources::build_children(test, &ctx.config)?;
            let pp = PostParams {
                field_manager: Some(labels::OPERATOR_NAME.into()),
                ..PostParams::default()
            };
            // The missing children are created at once: a Service create
            // waits for its ClusterIP allocation, which need not hold up the
            // Jobs (and their pods).
            let results = futures::future::join_all(missing.iter().map(|(_, label, _)| {
                let pp = &pp;
                let children = &children;
                let ns = ns.as_str();
                async move {
                    match *label {
                        "master Service" => Api::<Service>::namespaced(ctx.client.clone(), ns)
                            .create(pp, &children.service)
                            .await
                            .map(drop),
                        "master Job" => Api::<Job>::namespaced(ctx.client.clone(), ns)
                            .create(pp, &children.master_job)
                            .await
                            .map(drop),
                        _ => Api::<Job>::namespaced(ctx.client.clone(), ns)
                            .create(pp, &children.worker_job)
                            .await
                            .map(drop),
                    }
                }
            }))
            .await;
            let mut created = Vec::new();
            let mut failure = None;
            for ((kind, label, child_name), res) in missing.iter().zip(results) {
                match res {
                    Ok(()) => {
                        ctx.expect(&ns, child_name);
                        created.push(*label);
                    }
                    // Created earlier and not in the cache yet.
                    Err(kube::Error::Api(s)) if s.code == 409 => ctx.expect(&ns, child_name),
                    Err(source) => {
                        failure.get_or_insert(Error::Create {
                            kind,
                            name: child_name.clone(),
                            source,
                        });
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
            if !created.is_empty() {
                obs.service_exists = true;
                obs.master_job_exists = true;
                obs.worker_job_exists = true;
                obs.children_spec_hash = Some(spec_hash.clone());
                if was_created {
                    let note = format!("recreated {} deleted during the run", created.join(", "));
                    warn!(%ns, %name, "{note}");
                    publish(ctx, test, true, event_reason::CHILD_RECREATED, note).await;
                } else {
                    info!(%ns, %name, "created master Service, master Job and worker Job");
                    publish(
                        ctx,
                        test,
                        false,
                        event_reason::CREATED,
                        format!(
                            "created Service {service_name}, Jobs {master_name} and {worker_name}"
                        ),
                    )
                    .await;
                }
            }
        }
    }

    // Pods of this test, from the cache.
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && p.labels().get(labels::LABEL_TEST_NAME).map(String::as_str)
                    == Some(resources::names::label_value(&name).as_str())
                && p.labels().get(labels::LABEL_MANAGED_BY).map(String::as_str)
                    == Some(labels::OPERATOR_NAME)
        })
        .collect();
    let (master_pods, worker_pods): (Vec<Arc<Pod>>, Vec<Arc<Pod>>) =
        pods.iter().cloned().partition(|p| {
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
    obs.worker_outcome = worker_job.as_ref().and_then(|j| job_outcome(j));
    obs.master_outcome = master_job
        .as_ref()
        .and_then(|j| job_outcome(j))
        .map(|o| match o {
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

    // First start: while only some of the test's pods run and nothing went
    // wrong, wait (bounded by START_HOLD) for the rest, so the start is one
    // status write. Nothing is read or written meanwhile.
    let first_pod_runs = obs.master_running_since.is_some() || obs.running_workers > 0;
    let all_pods_run =
        obs.master_running_since.is_some() && obs.running_workers >= test.spec.worker.replicas;
    let partial_start = !terminal
        && status
            .and_then(|s| s.phase)
            .is_none_or(|p| p == Phase::Pending)
        && obs.service_exists
        && obs.master_job_exists
        && obs.worker_job_exists
        && obs.health.is_none()
        && obs.master_outcome.is_none()
        && obs.worker_outcome.is_none()
        && first_pod_runs
        && !all_pods_run;
    if let Some(left) = ctx.start_holds.check(uid, partial_start, START_HOLD) {
        debug!(%ns, %name, ?left, "some pods run, waiting for the others before writing the start");
        return Ok(Action::requeue(left));
    }

    // The master's statistics: read at most once per interval while it runs.
    if terminal {
        ctx.forget_stats(&ns, &name);
    } else if let Some(ip) = master_pods.iter().find_map(|p| {
        running_since(p)?;
        p.status.as_ref()?.pod_ip.as_deref()?.parse::<IpAddr>().ok()
    }) {
        match ctx.stats_read_due_in(&ns, &name) {
            Some(left) => obs.next_stats_read = Some(left),
            None => {
                let read = read_master_stats(ctx, test, ip).await;
                obs.next_stats_read = Some(ctx.stats_read_done(&ns, &name, run_under_way(&read)));
                obs.stats = Some(read);
            }
        }
    }

    let view = TestView {
        generation: test.metadata.generation,
        expected_workers: test.spec.worker.replicas,
        spec_hash: &spec_hash,
        status,
        thresholds: test.spec.thresholds.as_ref(),
    };
    let derived = state::derive(&view, &obs, Timestamp::now(), ctx.config.grace_period);

    if Some(&derived.status) != status {
        let api: Api<LocustTest> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": status_merge_patch(status, &derived.status) });
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::PatchStatus)?;
        ctx.written.record(
            uid,
            written.metadata.resource_version,
            derived.status.clone(),
        );
        if derived.status.phase != status.and_then(|s| s.phase) {
            info!(%ns, %name, phase = ?derived.status.phase, "phase changed");
        }
    } else {
        debug!(%ns, %name, "status unchanged");
    }
    for ev in derived.events {
        publish(ctx, test, ev.warning, ev.reason, ev.message).await;
    }

    Ok(match derived.requeue_after {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// A JSON merge patch turning `current` into `desired`: the desired status,
/// plus an explicit `null` for every top-level field `desired` no longer has
/// (a merge patch cannot remove a field by omitting it).
fn status_merge_patch(
    current: Option<&crate::api::LocustTestStatus>,
    desired: &crate::api::LocustTestStatus,
) -> serde_json::Value {
    let mut body = serde_json::to_value(desired).unwrap_or_else(|_| json!({}));
    if let (Some(cur), serde_json::Value::Object(map)) = (
        current.and_then(|c| serde_json::to_value(c).ok()),
        &mut body,
    ) && let serde_json::Value::Object(cur) = cur
    {
        for key in cur.keys() {
            if !map.contains_key(key) {
                map.insert(key.clone(), serde_json::Value::Null);
            }
        }
    }
    body
}

/// What to do after a failed reconcile.
pub fn error_policy(_test: Arc<LocustTest>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(err.reason());
    warn!(error = %err, reason = err.reason(), "reconcile failed");
    match err {
        Error::Build(_) | Error::NameConflict { .. } => Action::requeue(Duration::from_secs(60)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LocustTestStatus, Phase};

    #[test]
    fn stats_reads_retry_quickly_only_until_the_run_is_under_way() {
        let interval = Duration::from_secs(10);
        let delays = |reads: &[bool], interval: Duration| {
            let mut prev: Option<StatsSchedule> = None;
            let mut out = Vec::new();
            for &under_way in reads {
                let (delay, under_way) = next_stats_delay(prev.as_ref(), under_way, interval);
                out.push(delay.as_millis());
                prev = Some(StatsSchedule {
                    at: Instant::now() + delay,
                    delay,
                    under_way,
                });
            }
            out
        };
        // 1, 2, 4, 8 s, then the interval; once a read found the run under
        // way, the interval even when a read fails (the master exiting, a
        // NetworkPolicy).
        let reads = [false, false, false, false, false, true, false, true];
        assert_eq!(
            delays(&reads, interval),
            [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]
        );
        // The interval bounds the retries.
        let short = Duration::from_millis(1500);
        assert_eq!(delays(&[false, false, false], short), [1000, 1500, 1500]);
        assert_eq!(delays(&[true], short), [1500]);
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

    #[test]
    fn written_status_stands_in_until_the_cache_shows_it() {
        let written = WrittenStatuses::default();
        let running = LocustTestStatus {
            phase: Some(Phase::Running),
            ..Default::default()
        };
        assert_eq!(written.current(Some("u1"), Some("10")), None);
        written.record(Some("u1"), Some("11".into()), running.clone());
        // The cache still shows the object before the write.
        assert_eq!(
            written.current(Some("u1"), Some("10")),
            Some(running.clone())
        );
        // Another test, or no uid: nothing.
        assert_eq!(written.current(Some("u2"), Some("10")), None);
        assert_eq!(written.current(None, Some("10")), None);
        // The cache caught up: the entry goes.
        assert_eq!(written.current(Some("u1"), Some("11")), None);
        assert!(written.is_empty());
        // A write without a resourceVersion never stands in.
        written.record(Some("u1"), None, running.clone());
        assert_eq!(written.current(Some("u1"), Some("10")), None);
        written.record(Some("u1"), Some("12".into()), running);
        assert_eq!(written.len(), 1);
        written.forget(Some("u1"));
        assert!(written.is_empty());
        written.record(None, Some("13".into()), LocustTestStatus::default());
        assert!(written.is_empty());
    }

    #[test]
    fn merge_patch_removes_fields_the_desired_status_dropped() {
        let current = LocustTestStatus {
            phase: Some(Phase::Running),
            connected_workers: Some(2),
            ..Default::default()
        };
        let desired = LocustTestStatus {
            phase: Some(Phase::Succeeded),
            ..Default::default()
        };
        let patch = status_merge_patch(Some(&current), &desired);
        assert_eq!(patch["phase"], "Succeeded");
        assert!(patch["connectedWorkers"].is_null());
        assert!(
            patch
                .as_object()
                .is_some_and(|m| m.contains_key("connectedWorkers"))
        );
        let fresh = status_merge_patch(None, &desired);
        assert!(
            !fresh
                .as_object()
                .is_some_and(|m| m.contains_key("connectedWorkers"))
        );
    }
}
