//! The reconcile function, in four steps: observe (read the test and its
//! children from the watch caches: [`super::observe`]), ensure the children
//! (create the missing ones: [`super::children`]) and observe their pods, read the
//! master's statistics when due ([`super::stats_read`]), and write the status
//! derived by the pure phase machine ([`super::state`]) with its Events, only
//! on change ([`super::write`]). A failed reconcile is counted by reason,
//! reported by a rate-limited Warning Event on the test, and retried
//! ([`error_policy`]).

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::debug;

use crate::api::LocustTest;

use super::children;
use super::context::failed_reconcile;
use super::observe::{self, partial_start};
use super::start_deadline;
use super::stats_read;
use super::write;

use super::context::{Context, Error};
use super::memory::START_HOLD;

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
    // Pods come from the Jobs: look at them once the Jobs are ensured (and
    // the creation's Event published), so a first reconcile whose pods
    // already run writes the start, not a `Pending` about to go stale.
    observe::observe_pods(ctx, &mut seen);
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
    start_deadline::check(ctx, test, &mut seen).await;
    write::write_status(ctx, test, &seen).await
}

/// What to do after a failed reconcile: count it by reason, report it by a
/// Warning Event on the test (at most once per reason and test every
/// [`super::memory::ERROR_EVENT_INTERVAL`]: [`failed_reconcile`]), and retry (after 60 s when only a change of the test or of a
/// foreign object can help, else after 5 s).
pub fn error_policy(test: Arc<LocustTest>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(err.reason());
    let (recorder, log) = (&ctx.recorder, &ctx.error_events);
    failed_reconcile(recorder, log, test.object_ref(&()), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event_reason;
    use crate::controller::memory::ErrorEventLog;
    use kube::core::Status;
    use std::time::Duration;

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
