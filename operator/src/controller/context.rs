//! The reconciler's shared state ([`Context`]), its error type ([`Error`],
//! each with its Event reason) and how Events are published.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use tracing::warn;

use crate::api::{LocustTest, event_reason};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::resources;

use super::memory::{ErrorEventLog, Expectations, StartHolds, StatsSchedules, WrittenStatuses};

/// Reconcile failures. Each has a `reason()`, the label of the errors metric
/// and the reason of the Warning Event that reports it on the test
/// ([`super::reconcile::error_policy`]).
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
pub(crate) fn api_failure(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.reason.is_empty() => format!("the API server answered {}", s.code),
        kube::Error::Api(s) => format!("the API server answered {} {}", s.code, s.reason),
        _ => "the API server could not be reached".to_owned(),
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
    /// Tests whose first start is being held back (see [`super::memory::START_HOLD`]).
    pub start_holds: StartHolds,
    /// The reconcile errors reported by Events (see [`super::memory::ERROR_EVENT_INTERVAL`]).
    pub error_events: ErrorEventLog,
}

impl Context {
    /// Forgets everything remembered about the test `uid`.
    pub(super) fn forget(&self, uid: Option<&str>) {
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
    publish_on(&ctx.recorder, &test.object_ref(&()), warning, reason, note).await;
}

/// Publishes an Event with `recorder` on the object `regarding`; a failure is
/// logged, never fails the reconcile.
pub(crate) async fn publish_on(
    recorder: &Recorder,
    regarding: &ObjectReference,
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
    if let Err(e) = recorder.publish(&ev, regarding).await {
        warn!(error = %e, reason, "publishing an Event failed");
    }
}

/// A reconcile error of either controller, as [`failed_reconcile`] reports it.
pub(crate) trait Failure: std::fmt::Display {
    /// CamelCase reason, of the Warning Event too.
    fn reason(&self) -> &'static str;
    /// The note of the Warning Event, `None` when it gets none.
    fn event_note(&self) -> Option<String>;
    /// Only a change of the object (or of a foreign one) can help.
    fn waits_for_change(&self) -> bool;
}

impl Failure for Error {
    fn reason(&self) -> &'static str {
        Error::reason(self)
    }
    fn event_note(&self) -> Option<String> {
        Error::event_note(self)
    }
    fn waits_for_change(&self) -> bool {
        matches!(self, Error::Build(_) | Error::NameConflict { .. })
    }
}

/// What to do after the failed reconcile `err` of `regarding`: log it,
/// publish its Warning Event from a task (this runs outside the reconcile),
/// at most once per reason and object every
/// [`super::memory::ERROR_EVENT_INTERVAL`], and retry: after 60 s when only a
/// change can help, else after 5 s.
pub(crate) fn failed_reconcile(
    recorder: &Recorder,
    log: &ErrorEventLog,
    regarding: ObjectReference,
    err: &impl Failure,
) -> Action {
    let reason = err.reason();
    warn!(error = %err, kind = ?regarding.kind, reason, "reconcile failed");
    if let Some(note) = err.event_note()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
        && log.due(
            regarding.uid.as_deref(),
            reason,
            super::memory::ERROR_EVENT_INTERVAL,
        )
    {
        let recorder = recorder.clone();
        runtime.spawn(async move {
            publish_on(&recorder, &regarding, true, reason, note).await;
        });
    }
    Action::requeue(Duration::from_secs(if err.waits_for_change() {
        60
    } else {
        5
    }))
}
