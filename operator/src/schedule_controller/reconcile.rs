//! One reconcile of a LocustSchedule: read its tests from the cache, decide
//! ([`super::decide`]), apply the plan — delete (propagation Background),
//! create (an `AlreadyExists` of the schedule's own test counts as done: the
//! name is deterministic, so a restart, a second replica or a clock jump
//! cannot start a time twice), write the status only when it differs (a JSON
//! merge patch of `/status`), publish the Events. A failed reconcile is
//! reported by a rate-limited Warning Event and retried ([`error_policy`]).

use std::sync::Arc;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use crate::api::schedule::LocustSchedule;
use crate::api::{LocustTest, schedule_event_reason as event};
use crate::controller::context::{Failure, api_failure, failed_reconcile, publish_on};
use crate::controller::write::status_merge_patch;
use crate::schedule::RunError;
use crate::schedule::runs::{run_now_test_for, test_for};

use super::context::Context;
use super::decide::{Create, Delete, OwnedTest, decide, is_owned_by};

/// The API calls of a reconcile, as its errors name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Create,
    Delete,
    PatchStatus,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Call::Create => "creating LocustTest",
            Call::Delete => "deleting LocustTest",
            Call::PatchStatus => "updating the status of LocustSchedule",
        })
    }
}

/// Reconcile failures, each with its Event reason ([`Failure::reason`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("LocustSchedule has no namespace")]
    MissingNamespace,
    #[error("cannot build the test: {0}")]
    Build(#[from] RunError),
    #[error("LocustTest {name} already exists and is not owned by this LocustSchedule")]
    NameConflict { name: String },
    #[error("{call} {name}: {source}")]
    Api {
        call: Call,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Failure for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::Build(_) => event::INVALID_SCHEDULE,
            Error::NameConflict { .. } => event::NAME_CONFLICT,
            Error::Api { call, .. } => match call {
                Call::Create => event::CREATE_FAILED,
                Call::Delete => event::DELETE_FAILED,
                Call::PatchStatus => event::STATUS_UPDATE_FAILED,
            },
        }
    }

    /// Without the API server's message (which may quote the object's values).
    fn event_note(&self) -> Option<String> {
        match self {
            Error::MissingNamespace => None,
            Error::Build(_) | Error::NameConflict { .. } => Some(self.to_string()),
            Error::Api { call, name, source } => {
                Some(format!("{call} {name} failed: {}", api_failure(source)))
            }
        }
    }

    fn waits_for_change(&self) -> bool {
        matches!(self, Error::Build(_) | Error::NameConflict { .. })
    }
}

/// Maps a failed `call` on `name` to an [`Error`].
fn failed(call: Call, name: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
    move |source| Error::Api {
        call,
        name: name.to_owned(),
        source,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// One reconcile of one LocustSchedule.
pub async fn reconcile(schedule: Arc<LocustSchedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = schedule.namespace().ok_or(Error::MissingNamespace)?;
    let name = schedule.name_any();
    let uid = schedule.metadata.uid.as_deref();
    if schedule.metadata.deletion_timestamp.is_some() {
        // Garbage collection deletes its tests.
        ctx.pending.forget(uid);
        return Ok(Action::await_change());
    }
    // Decide only on synced caches (a new leader's tests cache fills after
    // its schedules cache, and the Controller waits for the latter only).
    if ctx.synced.clone().wait_for(|s| *s).await.is_err() {
        return Ok(Action::await_change());
    }
    let current = ctx.pending.status(
        uid,
        schedule.metadata.resource_version.as_deref(),
        schedule.status.as_ref(),
    );
    let cached: Vec<OwnedTest> = ctx
        .tests
        .state()
        .iter()
        .filter(|t| is_owned_by(&schedule, t))
        .map(|t| OwnedTest::of(&name, t))
        .collect();
    let owned = ctx.pending.owned(uid, cached);
    let now = ctx.clock.now();
    let plan = decide(&schedule, current.as_ref(), &owned, now);

    let apply = Apply {
        ctx: &ctx,
        schedule: &schedule,
        tests: Api::namespaced(ctx.client.clone(), &ns),
    };
    for d in &plan.delete {
        apply.delete(d).await?;
    }
    for c in &plan.create {
        apply.create(c).await?;
    }
    if Some(&plan.status) != current.as_ref() {
        let api: Api<LocustSchedule> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": status_merge_patch(current.as_ref(), &plan.status) });
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(failed(Call::PatchStatus, &name))?;
        ctx.pending
            .wrote(uid, written.metadata.resource_version, plan.status.clone());
    } else {
        debug!(%ns, %name, "schedule status unchanged");
    }
    for ev in &plan.events {
        publish(&ctx, &schedule, ev.warning, ev.reason, ev.note.clone()).await;
    }
    Ok(plan
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

async fn publish(
    ctx: &Context,
    schedule: &LocustSchedule,
    warning: bool,
    reason: &str,
    note: String,
) {
    publish_on(
        &ctx.recorder,
        &schedule.object_ref(&()),
        warning,
        reason,
        note,
    )
    .await;
}

/// Applies the creates and deletes of a plan for one schedule.
struct Apply<'a> {
    ctx: &'a Context,
    schedule: &'a LocustSchedule,
    tests: Api<LocustTest>,
}

impl Apply<'_> {
    async fn delete(&self, d: &Delete) -> Result<(), Error> {
        let (ctx, schedule, tests) = (self.ctx, self.schedule, &self.tests);
        match tests.delete(&d.name, &DeleteParams::background()).await {
            Ok(_) => {
                info!(schedule = %schedule.name_any(), test = %d.name, why = d.why.describe(), "deleted LocustTest");
                let note = format!("deleted LocustTest {}: {}", d.name, d.why.describe());
                publish(ctx, schedule, false, event::TEST_DELETED, note).await;
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(failed(Call::Delete, &d.name)(e)),
        }
        ctx.pending
            .deleted(schedule.metadata.uid.as_deref(), &d.name);
        Ok(())
    }

    async fn create(&self, c: &Create) -> Result<(), Error> {
        let (ctx, schedule, tests) = (self.ctx, self.schedule, &self.tests);
        let test = match &c.run_now {
            Some(token) => run_now_test_for(schedule, token, c.scheduled)?,
            None => test_for(schedule, c.scheduled)?,
        };
        let schedule_name = schedule.name_any();
        let uid = schedule.metadata.uid.as_deref();
        let created = match tests.create(&PostParams::default(), &test).await {
            Ok(created) => {
                let why = match &c.run_now {
                    Some(token) => format!("on demand (locust.io/run-now {token:?})"),
                    None => format!("for {}", c.scheduled),
                };
                info!(schedule = %schedule_name, test = %c.name, %why, "created LocustTest");
                let note = format!("created LocustTest {} {why}", c.name);
                publish(ctx, schedule, false, event::TEST_CREATED, note).await;
                created
            }
            Err(e) if is_status(&e, 409) => {
                // Created before: by this schedule (a restart, another replica)
                // it counts as done; by anything else it is a conflict.
                let existing = tests
                    .get_opt(&c.name)
                    .await
                    .map_err(failed(Call::Create, &c.name))?;
                match existing {
                    Some(t) if is_owned_by(schedule, &t) => {
                        debug!(schedule = %schedule_name, test = %c.name, "already created");
                        t
                    }
                    _ => {
                        return Err(Error::NameConflict {
                            name: c.name.clone(),
                        });
                    }
                }
            }
            Err(e) => return Err(failed(Call::Create, &c.name)(e)),
        };
        ctx.pending
            .created(uid, OwnedTest::of(&schedule_name, &created));
        Ok(())
    }
}

/// What to do after a failed reconcile: report it by a rate-limited Warning
/// Event on the schedule and retry ([`failed_reconcile`]).
pub fn error_policy(schedule: Arc<LocustSchedule>, err: &Error, ctx: Arc<Context>) -> Action {
    let regarding = schedule.object_ref(&());
    failed_reconcile(&ctx.recorder, &ctx.error_events, regarding, err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schedule_event_reason;
    use kube::core::Status;

    #[test]
    fn every_error_with_an_event_has_a_declared_reason() {
        let api = |code| {
            kube::Error::Api(Box::new(Status {
                code,
                reason: "Invalid".into(),
                message: "spec.env: \"hunter2\"".into(),
                ..Status::default()
            }))
        };
        let errors = [
            Error::Build(RunError::MissingMetadata { field: "uid" }),
            failed(Call::Create, "s-1")(api(422)),
            failed(Call::Delete, "s-1")(api(500)),
            Error::NameConflict { name: "s-1".into() },
            failed(Call::PatchStatus, "s")(api(409)),
        ];
        for e in &errors {
            assert!(
                schedule_event_reason::ALL.contains(&e.reason()),
                "{}",
                e.reason()
            );
            let note = e.event_note().unwrap_or_default();
            assert!(!note.is_empty() && !note.contains("hunter2"), "{note}");
        }
        assert_eq!(
            errors[1].event_note().as_deref(),
            Some("creating LocustTest s-1 failed: the API server answered 422 Invalid")
        );
        assert_eq!(Error::MissingNamespace.event_note(), None);
        assert!(is_status(&api(409), 409) && !is_status(&api(409), 404));
    }
}
