//! The reconcile function, in four steps: observe (read the test, its
//! children and pods from the watch caches: [`super::observe`]), ensure the
//! children (create the missing ones: [`super::children`]), read the
//! master's statistics when due ([`super::stats_read`]), and write the status
//! derived by the pure phase machine ([`super::state`]) with its Events, only
//! on change ([`super::write`]). A failed reconcile is counted by reason and
//! retried ([`error_policy`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::api::LocustTest;
use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::resources;

use super::children::{self, Expectations};
use super::observe::{self, partial_start};
use super::stats_read::{self, StatsSchedules};
use super::write::{self, WrittenStatuses};

pub use super::observe::{START_HOLD, StartHolds};
pub use super::stats_read::DEFAULT_STATS_INTERVAL;

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
}

impl Context {
    /// Forgets everything remembered about the test `uid`.
    fn forget(&self, uid: Option<&str>) {
        self.expectations.forget(uid);
        self.stats_reads.forget(uid);
        self.written.forget(uid);
        self.start_holds.forget(uid);
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

/// What to do after a failed reconcile.
pub fn error_policy(_test: Arc<LocustTest>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(err.reason());
    warn!(error = %err, reason = err.reason(), "reconcile failed");
    match err {
        Error::Build(_) | Error::NameConflict { .. } => Action::requeue(Duration::from_secs(60)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}
