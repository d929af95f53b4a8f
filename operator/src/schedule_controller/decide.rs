//! The decision core of the schedule controller, pure: from a schedule, the
//! tests it owns (as the cache shows them) and the time, the [`Plan`] — the
//! tests to create and to delete, the status to write, the Events of the
//! condition changes, and when to look again. No API call, no clock: the
//! same input always gives the same plan, which is what makes restarts, two
//! replicas and clock jumps safe together with the deterministic names of
//! [`crate::schedule::runs`].
//!
//! The rules are CronJob's (controller v2, `syncCronJob`):
//!
//! - the due time is the most recent scheduled time after the last one
//!   started ([`missed_starts`]: since `status.lastScheduleTime`, the newest
//!   scheduled time among the owned tests, or the creation time), within
//!   `startingDeadlineSeconds`; older ones are missed and never run; more
//!   than 100 of them is a Warning, and the most recent still runs;
//! - suspended: nothing is started (due times pass and count as missed; on
//!   resume without a deadline the most recent one starts at once, as with
//!   CronJob), finished tests are still pruned;
//! - `Forbid` holds a due time back while a test of the schedule has not
//!   finished (it starts once that one finishes, if still within the
//!   deadline); `Allow` starts it; `Replace` deletes the unfinished tests and
//!   starts it;
//! - finished tests beyond `successfulTestsHistoryLimit` and
//!   `failedTestsHistoryLimit` are deleted, oldest first;
//! - a new value of the `locust.io/run-now` annotation starts one test now
//!   (whatever `suspend` and the policy say), once: the value is recorded in
//!   `status.lastRunNowToken`, and the test's name derives from it.

use std::cmp::Reverse;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::api::schedule::{
    ConcurrencyPolicy, FinishedTest, LocustSchedule, LocustScheduleStatus, ScheduledTest,
};
use crate::api::{
    LocustTest, LocustTestStatus, Phase, condition_type, schedule_condition_reason as reason,
    schedule_condition_type as ctype, schedule_event_reason as event,
};
use crate::schedule::runs::{self, RunError, schedule_of, scheduled_time_of};
use crate::schedule::{
    MAX_MISSED, RUN_NOW_ANNOTATION, SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION, Timestamp,
    missed_starts,
};

/// Longest wait before looking at a schedule again, even when its next time
/// is later: the wait runs on a monotonic timer, so a jump of the wall clock
/// is seen within this much.
pub const MAX_REQUEUE: Duration = Duration::from_secs(300);

/// Added to the wait until the next scheduled time, so the reconcile runs
/// when that time has passed (a scheduled time is due at `now >= t`).
pub const REQUEUE_SLACK: Duration = Duration::from_millis(50);

/// What the decision reads of one LocustTest of the schedule: its name, the
/// time it was scheduled for (its annotation, else its name), its creation,
/// its run-now token (`None`: a scheduled test) and its status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedTest {
    pub(super) name: String,
    pub(super) scheduled: Option<Timestamp>,
    pub(super) created: Option<Timestamp>,
    pub(super) run_now_token: Option<String>,
    pub(super) status: LocustTestStatus,
}

impl OwnedTest {
    /// The view of `test`, a test of the schedule named `schedule_name`.
    pub fn of(schedule_name: &str, test: &LocustTest) -> OwnedTest {
        let name = test.name_any();
        let annotation = |key: &str| test.annotations().get(key).cloned();
        let scheduled = annotation(SCHEDULED_TIME_ANNOTATION)
            .and_then(|v| v.parse().ok())
            .or_else(|| scheduled_time_of(schedule_name, &name));
        OwnedTest {
            scheduled,
            created: test.metadata.creation_timestamp.as_ref().map(|t| t.0),
            run_now_token: annotation(RUN_NOW_ANNOTATION),
            status: test.status.clone().unwrap_or_default(),
            name,
        }
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn phase(&self) -> Option<Phase> {
        self.status.phase
    }

    fn completion(&self) -> Option<Timestamp> {
        self.status.completion_time.as_ref().map(|t| t.0)
    }

    /// Succeeded or Failed.
    pub fn is_finished(&self) -> bool {
        self.phase().is_some_and(Phase::is_terminal)
    }

    fn finished(&self) -> FinishedTest {
        let completed = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == condition_type::TEST_COMPLETED);
        FinishedTest {
            name: self.name.clone(),
            scheduled_time: self.scheduled.map(Time),
            completion_time: self.status.completion_time.clone(),
            reason: completed.map(|c| c.reason.clone()),
            result: self.status.result.clone(),
        }
    }

    /// Newest first: by completion, then creation, then name.
    fn age_key(&self) -> (Option<Timestamp>, Option<Timestamp>, String) {
        (self.completion(), self.created, self.name.clone())
    }
}

/// Whether `test` belongs to `schedule`: same namespace, the schedule label
/// naming it, and a controller owner reference to its uid. A test being
/// deleted no longer counts.
pub fn is_owned_by(schedule: &LocustSchedule, test: &LocustTest) -> bool {
    let Some(uid) = schedule.metadata.uid.as_deref() else {
        return false;
    };
    test.metadata.deletion_timestamp.is_none()
        && test.namespace() == schedule.namespace()
        && test.labels().get(SCHEDULE_LABEL) == schedule.metadata.name.as_ref()
        && test
            .owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true))
}

/// A test to create.
#[derive(Clone, Debug, PartialEq)]
pub struct Create {
    pub name: String,
    /// The scheduled time (for a run-now test: `now`).
    pub scheduled: Timestamp,
    /// The run-now token it is created for (`None`: a scheduled test).
    pub run_now: Option<String>,
}

/// Why a test is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteWhy {
    /// `Replace`: a new test is due while this one runs.
    Replaced,
    /// Past `successfulTestsHistoryLimit`.
    SuccessfulHistory,
    /// Past `failedTestsHistoryLimit`.
    FailedHistory,
}

impl DeleteWhy {
    /// Why, for the Event note.
    pub fn describe(self) -> &'static str {
        match self {
            DeleteWhy::Replaced => "replaced by a new test (concurrencyPolicy Replace)",
            DeleteWhy::SuccessfulHistory => "past successfulTestsHistoryLimit",
            DeleteWhy::FailedHistory => "past failedTestsHistoryLimit",
        }
    }
}

/// A test to delete.
#[derive(Clone, Debug, PartialEq)]
pub struct Delete {
    pub name: String,
    pub why: DeleteWhy,
}

/// An Event announcing a condition change.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// What to do for one schedule now.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Deleted first (`Replace` deletes before it creates).
    pub delete: Vec<Delete>,
    pub create: Vec<Create>,
    /// The status once the plan is applied.
    pub status: LocustScheduleStatus,
    pub events: Vec<PlannedEvent>,
    /// When to look again (`None`: on a change only).
    pub requeue_after: Option<Duration>,
}

/// What the scheduled part of the decision found.
#[derive(Default)]
struct Due {
    create: Option<Timestamp>,
    replace: bool,
    /// The new `OnSchedule` condition (status, reason, message), if it changes.
    on_schedule: Option<(bool, &'static str, String)>,
    next: Option<Timestamp>,
}

/// The plan for `schedule` (with status `current`: the cached one, or the
/// one this process last wrote) owning `owned` (the tests of
/// [`is_owned_by`], as the cache shows them) at `now`.
pub fn decide(
    schedule: &LocustSchedule,
    current: Option<&LocustScheduleStatus>,
    owned: &[OwnedTest],
    now: Timestamp,
) -> Plan {
    let spec = &schedule.spec;
    let name = schedule.name_any();
    let generation = schedule.metadata.generation;
    let prev = current.cloned().unwrap_or_default();
    let mut conditions = Conditions::new(&prev.conditions, now, generation);

    let active: Vec<&OwnedTest> = owned.iter().filter(|t| !t.is_finished()).collect();
    let parsed = schedule_of(schedule);
    let due = match &parsed {
        Ok((cron, tz)) => {
            let since = [
                prev.last_schedule_time.as_ref().map(|t| t.0),
                owned
                    .iter()
                    .filter(|t| t.run_now_token.is_none())
                    .filter_map(|t| t.scheduled)
                    .max(),
                schedule.metadata.creation_timestamp.as_ref().map(|t| t.0),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            let deadline = spec
                .starting_deadline_seconds
                .map(|s| u64::try_from(s).unwrap_or(0));
            let missed = missed_starts(cron, tz, since, now, deadline);
            let mut due = Due {
                next: missed.next,
                ..Due::default()
            };
            if missed.next.is_none() && missed.to_run.is_none() {
                let never = RunError::NeverDue {
                    schedule: spec.schedule.clone(),
                };
                conditions.set(
                    ctype::SCHEDULE_VALID,
                    false,
                    reason::NEVER_DUE,
                    never.to_string(),
                );
            } else {
                conditions.set(
                    ctype::SCHEDULE_VALID,
                    true,
                    reason::SCHEDULE_PARSED,
                    format!(
                        "{:?} in {}",
                        spec.schedule,
                        zone_name(spec.time_zone.as_deref())
                    ),
                );
            }
            if !spec.suspend {
                due_time(spec.concurrency_policy, &missed, &active, &mut due);
            }
            due
        }
        Err(e) => {
            conditions.set(
                ctype::SCHEDULE_VALID,
                false,
                reason::INVALID_SCHEDULE,
                e.to_string(),
            );
            Due::default()
        }
    };
    if let Some((status, why, message)) = due.on_schedule.clone() {
        conditions.set(ctype::ON_SCHEDULE, status, why, message);
    } else {
        conditions.keep_or(
            ctype::ON_SCHEDULE,
            parsed.is_ok().then(|| {
                (
                    true,
                    reason::NO_START_MISSED,
                    "no due time was missed".into(),
                )
            }),
        );
    }

    let mut delete: Vec<Delete> = Vec::new();
    if due.replace {
        delete.extend(active.iter().map(|t| Delete {
            name: t.name.clone(),
            why: DeleteWhy::Replaced,
        }));
    }
    let mut create = Vec::new();
    if let Some(t) = due.create {
        let test = runs::test_name(&name, t);
        if !owned.iter().any(|o| o.name == test) {
            create.push(Create {
                name: test,
                scheduled: t,
                run_now: None,
            });
        }
    }
    let token = run_now_token(schedule);
    let mut last_run_now_token = prev.last_run_now_token.clone();
    if let Some(token) = token.filter(|t| prev.last_run_now_token.as_deref() != Some(t)) {
        let test = runs::run_now_test_name(&name, &token);
        if !owned.iter().any(|o| o.name == test) {
            create.push(Create {
                name: test,
                scheduled: now,
                run_now: Some(token.clone()),
            });
        }
        last_run_now_token = Some(token);
    }

    // History: the finished tests past the limits, oldest first.
    for (phase, limit, why) in [
        (
            Phase::Succeeded,
            spec.successful_tests_history_limit,
            DeleteWhy::SuccessfulHistory,
        ),
        (
            Phase::Failed,
            spec.failed_tests_history_limit,
            DeleteWhy::FailedHistory,
        ),
    ] {
        let mut done: Vec<&OwnedTest> = owned.iter().filter(|t| t.phase() == Some(phase)).collect();
        done.sort_by_key(|t| Reverse(t.age_key()));
        let keep = usize::try_from(limit).unwrap_or(0);
        let mut past: Vec<Delete> = done
            .iter()
            .skip(keep)
            .map(|t| Delete {
                name: t.name.clone(),
                why,
            })
            .collect();
        past.reverse();
        delete.extend(past);
    }

    let mut still_active: Vec<ScheduledTest> = active
        .iter()
        .filter(|_| !due.replace)
        .map(|t| ScheduledTest {
            name: t.name.clone(),
            scheduled_time: t.scheduled.map(Time),
        })
        .chain(create.iter().map(|c| ScheduledTest {
            name: c.name.clone(),
            scheduled_time: Some(Time(c.scheduled)),
        }))
        .collect();
    still_active.sort_by_key(|t| (t.scheduled_time.as_ref().map(|t| t.0), t.name.clone()));

    let newest = |phase: Phase, prev: Option<&FinishedTest>| {
        owned
            .iter()
            .filter(|t| t.phase() == Some(phase))
            .max_by_key(|t| t.age_key())
            .map(OwnedTest::finished)
            .filter(|f| prev.is_none_or(|p| completion(f) >= completion(p)))
            .or_else(|| prev.cloned())
    };
    let last_successful_test = newest(Phase::Succeeded, prev.last_successful_test.as_ref());
    let last_failed_test = newest(Phase::Failed, prev.last_failed_test.as_ref());
    let last_result = match (&last_successful_test, &last_failed_test) {
        (Some(s), Some(f)) if completion(f) > completion(s) => Some(Phase::Failed),
        (Some(_), _) => Some(Phase::Succeeded),
        (None, Some(_)) => Some(Phase::Failed),
        (None, None) => None,
    };

    let last_schedule_time = match (prev.last_schedule_time.clone(), due.create) {
        (Some(p), Some(t)) => Some(Time(p.0.max(t))),
        (p, t) => p.or(t.map(Time)),
    };
    let next_schedule_time = (!spec.suspend).then_some(due.next).flatten();
    let (conditions, events) = conditions.finish();
    let status = LocustScheduleStatus {
        observed_generation: generation,
        last_schedule_time,
        next_schedule_time: next_schedule_time.map(Time),
        active_count: Some(i32::try_from(still_active.len()).unwrap_or(i32::MAX)),
        active: still_active,
        last_successful_test,
        last_failed_test,
        last_result,
        last_run_now_token,
        conditions,
    };
    let requeue_after = next_schedule_time.map(|next| {
        let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
        (wait + REQUEUE_SLACK).min(MAX_REQUEUE)
    });
    Plan {
        delete,
        create,
        status,
        events,
        requeue_after,
    }
}

/// The due time of a schedule that is not suspended: what to start, and the
/// `OnSchedule` condition it leaves.
fn due_time(
    policy: ConcurrencyPolicy,
    missed: &crate::schedule::MissedStarts,
    active: &[&OwnedTest],
    due: &mut Due,
) {
    let Some(t) = missed.to_run else {
        if let Some(late) = missed.too_late {
            due.on_schedule = Some((
                false,
                reason::STARTING_DEADLINE_EXCEEDED,
                format!("the test due at {late} could not start within startingDeadlineSeconds"),
            ));
        }
        return;
    };
    if policy == ConcurrencyPolicy::Forbid && !active.is_empty() {
        let names: Vec<&str> = active.iter().map(|t| t.name.as_str()).collect();
        due.on_schedule = Some((
            false,
            reason::CONCURRENT_TEST_RUNNING,
            format!(
                "the test due at {t} is held back (concurrencyPolicy Forbid): {} has not finished",
                names.join(", ")
            ),
        ));
        return;
    }
    due.replace = policy == ConcurrencyPolicy::Replace && !active.is_empty();
    due.create = Some(t);
    due.on_schedule = Some(if missed.too_many() {
        (
            false,
            reason::TOO_MANY_MISSED_STARTS,
            format!(
                "more than {MAX_MISSED} start times were missed: started the test due at {t}; set or decrease startingDeadlineSeconds or check clock skew"
            ),
        )
    } else {
        (
            true,
            reason::NO_START_MISSED,
            format!("started the test due at {t}"),
        )
    });
}

/// The `locust.io/run-now` value of `schedule`, if set and not blank.
pub fn run_now_token(schedule: &LocustSchedule) -> Option<String> {
    schedule
        .annotations()
        .get(RUN_NOW_ANNOTATION)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn completion(t: &FinishedTest) -> Option<Timestamp> {
    t.completion_time.as_ref().map(|t| t.0)
}

fn zone_name(tz: Option<&str>) -> &str {
    tz.unwrap_or("UTC")
}

/// The schedule's conditions as they are being decided, and the Events of
/// their changes.
struct Conditions<'a> {
    prev: &'a [Condition],
    next: Vec<Condition>,
    now: Timestamp,
    generation: Option<i64>,
}

impl<'a> Conditions<'a> {
    fn new(prev: &'a [Condition], now: Timestamp, generation: Option<i64>) -> Self {
        Self {
            prev,
            next: Vec::new(),
            now,
            generation,
        }
    }

    fn previous(&self, type_: &str) -> Option<&'a Condition> {
        self.prev.iter().find(|c| c.type_ == type_)
    }

    /// Sets condition `type_`; its transition time moves only when its status does.
    fn set(&mut self, type_: &str, status: bool, reason: &str, message: String) {
        let status = if status { "True" } else { "False" }.to_owned();
        let last_transition_time = self
            .previous(type_)
            .filter(|c| c.status == status)
            .map_or(Time(self.now), |c| c.last_transition_time.clone());
        self.next.retain(|c| c.type_ != type_);
        self.next.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message,
            last_transition_time,
            observed_generation: self.generation,
        });
    }

    /// Keeps condition `type_` as it was (with the current generation), or
    /// sets it to `initial` when it has none.
    fn keep_or(&mut self, type_: &str, initial: Option<(bool, &str, String)>) {
        match self.previous(type_) {
            Some(c) => {
                let (status, reason) = (c.status == "True", c.reason.clone());
                self.set(type_, status, &reason, c.message.clone());
            }
            None => {
                if let Some((status, reason, message)) = initial {
                    self.set(type_, status, reason, message);
                }
            }
        }
    }

    /// The conditions in table order, and an Event for each one that became
    /// a warning (or changed its warning).
    fn finish(mut self) -> (Vec<Condition>, Vec<PlannedEvent>) {
        let order = |c: &Condition| ctype::ALL.iter().position(|t| *t == c.type_);
        self.next.sort_by_key(order);
        let mut events = Vec::new();
        for c in &self.next {
            let unchanged = self.previous(&c.type_).is_some_and(|p| {
                p.status == c.status && p.reason == c.reason && p.message == c.message
            });
            if unchanged || c.status == "True" {
                continue;
            }
            let (warning, reason) = match c.reason.as_str() {
                reason::STARTING_DEADLINE_EXCEEDED => (true, event::START_MISSED),
                reason::TOO_MANY_MISSED_STARTS => (true, event::TOO_MANY_MISSED_STARTS),
                reason::CONCURRENT_TEST_RUNNING => (false, event::CONCURRENT_TEST_RUNNING),
                _ => (true, event::INVALID_SCHEDULE),
            };
            events.push(PlannedEvent {
                warning,
                reason,
                note: c.message.clone(),
            });
        }
        (self.next, events)
    }
}

#[cfg(test)]
mod tests;
