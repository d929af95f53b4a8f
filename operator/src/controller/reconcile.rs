//! The reconcile function, in four steps: observe (read the test, its
//! children and pods from the watch caches: [`super::observe`]), ensure the
//! children (create the missing ones: [`super::children`]), read the
//! master's statistics when due ([`super::stats_read`]), and write the status
//! derived by the pure phase machine ([`super::state`]) with its Events, only
//! on change ([`super::write`]). A failed reconcile is counted by reason,
//! reported by a rate-limited Warning Event on the test, and retried
//! ([`error_policy`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::api::{LocustTest, event_reason};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::resources;

use super::cache::UidCache;
use super::children::{self, Expectations};
use super::observe::{self, partial_start};
use super::stats_read::{self, StatsSchedules};
use super::write::{self, WrittenStatuses};

pub use super::observe::{START_HOLD, StartHolds};
pub use super::stats_read::DEFAULT_STATS_INTERVAL;

/// Reconcile failures. Each has a `reason()`, the label of the errors metric
/// and the reason of the Warning Event that reports it on the test
/// ([`error_policy`]).
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
            // Never an Event: a test without a namespace has none to hold it.
            Error::MissingNamespace => "MissingNamespace",
            Error::Build(_) => event_reason::INVALID_SPEC,
            Error::Create { .. } => event_reason::CREATE_FAILED,
            Error::NameConflict { .. } => event_reason::NAME_CONFLICT,
            Error::PatchStatus(_) => event_reason::STATUS_UPDATE_FAILED,
        }
    }

    /// The note of the Warning Event reporting the error, `None` when it
    /// gets none. Made of names, field paths, HTTP codes and reasons only:
    /// never the API server's message, which may quote the object's values.
    pub fn event_note(&self) -> Option<String> {
        match self {
            Error::MissingNamespace => None,
            Error::Build(e) => Some(format!("cannot build the test's resources: {e}")),
            Error::Create { kind, name, source } => Some(format!(
                "creating {kind} {name} failed: {}",
                api_failure(source)
            )),
            Error::NameConflict { .. } => Some(self.to_string()),
            Error::PatchStatus(source) => Some(format!(
                "updating the status failed: {}",
                api_failure(source)
            )),
        }
    }
}

/// How an API call failed, without the API server's message.
fn api_failure(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.reason.is_empty() => format!("the API server answered {}", s.code),
        kube::Error::Api(s) => format!("the API server answered {} {}", s.code, s.reason),
        _ => "the API server could not be reached".to_owned(),
    }
}

/// Least time between two Events of the same reconcile error on one test: a
/// persistent error (retried every 5 s or 60 s) is reported, not repeated.
pub const ERROR_EVENT_INTERVAL: Duration = Duration::from_secs(600);

/// When each reconcile error reason was last published as an Event on a test.
#[derive(Clone, Debug, Default)]
pub struct ErrorEvents(BTreeMap<&'static str, Instant>);

/// [`ErrorEvents`] by test uid.
pub type ErrorEventLog = UidCache<ErrorEvents>;

impl UidCache<ErrorEvents> {
    /// Whether an Event for `reason` on test `uid` is due (none was
    /// published in the last `interval`); if so it is recorded as published.
    pub fn due(&self, uid: Option<&str>, reason: &'static str, interval: Duration) -> bool {
        self.retain(|log| {
            log.0.retain(|_, at| at.elapsed() < interval);
            !log.0.is_empty()
        });
        self.update(uid, |slot| {
            let log = slot.get_or_insert_with(ErrorEvents::default);
            if log.0.contains_key(reason) {
                return false;
            }
            log.0.insert(reason, Instant::now());
            true
        })
        .unwrap_or(false)
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
    pub expectations: Expectations,
    /// Least time between two reads of a master's statistics (and between two
    /// status writes of live numbers).
    pub stats_interval: Duration,
    /// Time limit of one HTTP request to a master.
    pub stats_timeout: Duration,
    /// When each test's master is next due to be read.
    pub stats_reads: StatsSchedules,
    /// The last status this process wrote per test until the watch cache
    /// shows it: a reconcile triggered by a child's event may run before the
    /// test's own watch event of that write arrives, and must neither write
    /// the same status again (a no-op write) nor publish the same transition
    /// Event twice.
    pub written: WrittenStatuses,
    /// Tests whose first start is being held back (see [`START_HOLD`]).
    pub start_holds: StartHolds,
    /// The reconcile errors reported by Events (see [`ERROR_EVENT_INTERVAL`]).
    pub error_events: ErrorEventLog,
}

impl Context {
    /// Forgets everything remembered about the test `uid`.
    fn forget(&self, uid: Option<&str>) {
        self.expectations.forget(uid);
        self.stats_reads.forget(uid);
        self.written.forget(uid);
        self.start_holds.forget(uid);
        self.error_events.forget(uid);
    }
}

/// Publishes an Event on `test`; a failure is logged, never fails the reconcile.
pub(super) async fn publish(
    ctx: &Context,
    test: &LocustTest,
    warning: bool,
    reason: &str,
    note: String,
) {
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

/// One reconcile of one LocustTest.
pub async fn reconcile(test: Arc<LocustTest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile_started();
    let result = reconcile_inner(&test, &ctx).await;
    timer.finish();
    result
}

async fn reconcile_inner(test: &LocustTest, ctx: &Context) -> Result<Action, Error> {
    let ns = test.namespace().ok_or(Error::MissingNamespace)?;
    if test.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children; nothing to do.
        ctx.forget(test.metadata.uid.as_deref());
        return Ok(Action::await_change());
    }
    let mut seen = observe::observe(ctx, test, ns)?;
    children::ensure(ctx, test, &mut seen).await?;
    // First start: while only some of the test's pods run and nothing went
    // wrong, wait (bounded by START_HOLD) for the rest, so the start is one
    // status write. Nothing is read or written meanwhile.
    let partial = partial_start(&seen, test.spec.worker.replicas);
    if let Some(left) = ctx
        .start_holds
        .check(seen.uid.as_deref(), partial, START_HOLD)
    {
        let (ns, name) = (&seen.ns, &seen.name);
        debug!(%ns, %name, ?left, "some pods run, waiting for the others before writing the start");
        return Ok(Action::requeue(left));
    }
    stats_read::read_statistics(ctx, test, &mut seen).await;
    write::write_status(ctx, test, &seen).await
}

/// What to do after a failed reconcile: count it by reason, report it by a
/// Warning Event on the test (at most once per reason and test every
/// [`ERROR_EVENT_INTERVAL`]; published by a task, as this runs outside the
/// reconcile), and retry (after 60 s when only a change of the test or of a
/// foreign object can help, else after 5 s).
pub fn error_policy(test: Arc<LocustTest>, err: &Error, ctx: Arc<Context>) -> Action {
    let reason = err.reason();
    ctx.metrics.reconcile_error(reason);
    warn!(error = %err, reason, "reconcile failed");
    let action = match err {
        Error::Build(_) | Error::NameConflict { .. } => Action::requeue(Duration::from_secs(60)),
        _ => Action::requeue(Duration::from_secs(5)),
    };
    if let Some(note) = err.event_note()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
        && ctx
            .error_events
            .due(test.metadata.uid.as_deref(), reason, ERROR_EVENT_INTERVAL)
    {
        runtime.spawn(async move {
            publish(&ctx, &test, true, reason, note).await;
        });
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            code,
            reason: reason.into(),
            message: "Job.batch \"t-master\" is invalid: env[0].value: Invalid value: \"hunter2\""
                .into(),
            ..Status::default()
        }))
    }

    #[test]
    fn error_events_name_the_failure_without_the_servers_message() {
        let create = Error::Create {
            kind: "Job",
            name: "t-master".into(),
            source: api_error(422, "Invalid"),
        };
        assert_eq!(create.reason(), "CreateFailed");
        assert_eq!(
            create.event_note().as_deref(),
            Some("creating Job t-master failed: the API server answered 422 Invalid")
        );
        let patch = Error::PatchStatus(api_error(500, ""));
        assert_eq!(
            patch.event_note().as_deref(),
            Some("updating the status failed: the API server answered 500")
        );
        for e in [&create, &patch] {
            assert!(!e.event_note().unwrap_or_default().contains("hunter2"));
        }
        let conflict = Error::NameConflict {
            kind: "Service",
            name: "t-master".into(),
        };
        assert_eq!(
            conflict.event_note().as_deref(),
            Some("Service t-master already exists and is not owned by this LocustTest")
        );
        assert_eq!(Error::MissingNamespace.event_note(), None);
        // Every reason with an Event is in the Event reason table.
        for e in [&create, &patch, &conflict] {
            assert!(event_reason::ALL.contains(&e.reason()), "{}", e.reason());
        }
        assert!(!event_reason::ALL.contains(&Error::MissingNamespace.reason()));
    }

    #[test]
    fn an_error_is_reported_once_per_interval() {
        let log = ErrorEventLog::default();
        let interval = Duration::from_millis(100);
        assert!(log.due(Some("u1"), "CreateFailed", interval));
        assert!(!log.due(Some("u1"), "CreateFailed", interval), "repeated");
        assert!(
            log.due(Some("u1"), "NameConflict", interval),
            "another error"
        );
        assert!(
            log.due(Some("u2"), "CreateFailed", interval),
            "another test"
        );
        assert!(!log.due(None, "CreateFailed", interval), "no uid, no Event");
        std::thread::sleep(interval);
        assert!(
            log.due(Some("u1"), "CreateFailed", interval),
            "after the interval"
        );
        assert_eq!(log.len(), 1, "expired entries go");
        log.forget(Some("u1"));
        assert!(log.is_empty());
    }
}
