//! The decision core at chosen instants ([`TestClock`]): a small simulator
//! applies each plan (creates and deletes tests, writes the status) the way
//! the reconciler does, so sequences of reconciles are tested as well as
//! single decisions.

use super::*;
use crate::api::TestResult;
use crate::api::schedule::LocustSchedule;
use crate::schedule::{Clock, TestClock};
use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn schedule(cron: &str, created: &str) -> LocustSchedule {
    let text = include_str!("../../../samples/locustschedule.yaml");
    let mut s: LocustSchedule = crate::yaml::from_str(text).unwrap();
    s.metadata.namespace = Some("ns".into());
    s.metadata.uid = Some("uid-1".into());
    s.metadata.generation = Some(1);
    s.metadata.creation_timestamp = Some(Time(at(created)));
    s.spec.schedule = cron.into();
    s.spec.time_zone = None;
    s
}

/// A schedule, the tests it owns and its status, reconciled by [`decide`]
/// at the clock's time; each plan is applied as the reconciler applies it.
struct Sim {
    schedule: LocustSchedule,
    status: Option<LocustScheduleStatus>,
    owned: Vec<OwnedTest>,
    clock: TestClock,
    /// Every test ever created, in order.
    created: Vec<String>,
}

impl Sim {
    fn new(schedule: LocustSchedule, now: &str) -> Sim {
        Sim {
            schedule,
            status: None,
            owned: Vec::new(),
            clock: TestClock::new(at(now)),
            created: Vec::new(),
        }
    }

    /// A `* * * * *` schedule created at `created`, at `now`.
    fn every_minute(created: &str, now: &str) -> Sim {
        Sim::new(schedule("* * * * *", created), now)
    }

    fn plan(&self) -> Plan {
        decide(
            &self.schedule,
            self.status.as_ref(),
            &self.owned,
            self.clock.now(),
        )
    }

    /// Decides and applies the plan; returns it.
    fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        plan
    }

    fn step_at(&mut self, now: &str) -> Plan {
        self.clock.set(at(now));
        self.step()
    }

    fn apply(&mut self, plan: &Plan) {
        self.owned
            .retain(|t| !plan.delete.iter().any(|d| d.name == t.name));
        for c in &plan.create {
            assert!(!self.created.contains(&c.name), "{} created twice", c.name);
            self.created.push(c.name.clone());
            self.owned.push(OwnedTest {
                name: c.name.clone(),
                scheduled: Some(c.scheduled),
                created: Some(self.clock.now()),
                run_now_token: c.run_now.clone(),
                ..OwnedTest::default()
            });
        }
        self.status = Some(plan.status.clone());
    }

    fn finish(&mut self, name: &str, phase: Phase) {
        let now = self.clock.now();
        let t = self.owned.iter_mut().find(|t| t.name == name).unwrap();
        t.status = LocustTestStatus {
            phase: Some(phase),
            completion_time: Some(Time(now)),
            result: Some(TestResult {
                total_requests: Some(100),
                ..TestResult::default()
            }),
            conditions: vec![Condition {
                type_: condition_type::TEST_COMPLETED.into(),
                status: "True".into(),
                reason: format!("Test{phase}"),
                message: String::new(),
                last_transition_time: Time(now),
                observed_generation: None,
            }],
            ..LocustTestStatus::default()
        };
    }

    /// Sets the schedule's run-now annotation to `token`.
    fn run_now(&mut self, token: &str) {
        let annotations = self.schedule.metadata.annotations.get_or_insert_default();
        annotations.insert(RUN_NOW_ANNOTATION.into(), token.into());
    }

    /// Steps at `now` and checks that nothing happens: no create, delete,
    /// Event or status change (no write).
    fn quiet(&mut self, now: &str) -> Plan {
        let before = self.status.clone();
        let plan = self.step_at(now);
        assert!(
            plan.create.is_empty() && plan.delete.is_empty() && plan.events.is_empty(),
            "{plan:?}"
        );
        assert_eq!(Some(&plan.status), before.as_ref());
        plan
    }

    /// Steps at `now` and checks that nothing starts: `OnSchedule` is False
    /// with `reason`, its message mentions `mentions`, one Event `event`.
    fn skipped(
        &mut self,
        now: &str,
        reason: &str,
        mentions: &str,
        event: (bool, &'static str),
    ) -> Plan {
        let plan = self.step_at(now);
        assert!(plan.create.is_empty());
        let c = self.on_schedule("False", reason);
        assert!(c.message.contains(mentions), "{}", c.message);
        assert_eq!(events(&plan), [event]);
        plan
    }

    /// The `OnSchedule` condition, checked to have `status` and `reason`.
    fn on_schedule(&self, status: &str, reason: &str) -> Condition {
        let c = self.condition(ctype::ON_SCHEDULE);
        assert_eq!((c.status.as_str(), c.reason.as_str()), (status, reason));
        c
    }

    fn condition(&self, type_: &str) -> Condition {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .cloned()
            .unwrap()
    }
}

fn events(plan: &Plan) -> Vec<(bool, &'static str)> {
    plan.events.iter().map(|e| (e.warning, e.reason)).collect()
}

fn created_times(plan: &Plan) -> Vec<Timestamp> {
    plan.create.iter().map(|c| c.scheduled).collect()
}

fn deleted(plan: &Plan) -> Vec<(&str, DeleteWhy)> {
    plan.delete
        .iter()
        .map(|d| (d.name.as_str(), d.why))
        .collect()
}

#[test]
fn on_time_creates_the_test_of_the_minute_once() {
    let mut sim = Sim::every_minute("2026-03-02T10:00:30Z", "2026-03-02T10:00:59Z");
    let plan = sim.step();
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.status.next_schedule_time,
        Some(Time(at("2026-03-02T10:01:00Z")))
    );
    assert_eq!(
        plan.requeue_after,
        Some(Duration::from_secs(1) + REQUEUE_SLACK)
    );
    assert_eq!(plan.status.active_count, Some(0));
    assert_eq!(
        sim.condition(ctype::ON_SCHEDULE).reason,
        reason::NO_START_MISSED
    );
    assert_eq!(
        sim.condition(ctype::SCHEDULE_VALID).reason,
        reason::SCHEDULE_PARSED
    );

    let plan = sim.step_at("2026-03-02T10:01:00Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:01:00Z")]);
    assert_eq!(plan.create[0].name, "nightly-29540761");
    assert_eq!(plan.create[0].run_now, None);
    let st = &plan.status;
    assert_eq!(
        st.last_schedule_time,
        Some(Time(at("2026-03-02T10:01:00Z")))
    );
    assert_eq!(
        st.next_schedule_time,
        Some(Time(at("2026-03-02T10:02:00Z")))
    );
    assert_eq!(st.active_count, Some(1));
    assert_eq!(st.active[0].name, "nightly-29540761");
    assert_eq!(st.observed_generation, Some(1));
    assert!(plan.events.is_empty(), "{:?}", plan.events);

    // Later in the same minute, and again: nothing more, nothing to write.
    let plan = sim.quiet("2026-03-02T10:01:30Z");
    let again = sim.step();
    assert_eq!(again, plan, "the same input gives the same plan");
}

#[test]
fn late_within_the_deadline_still_starts() {
    let mut s = schedule("* * * * *", "2026-03-02T10:00:30Z");
    s.spec.starting_deadline_seconds = Some(60);
    let mut sim = Sim::new(s, "2026-03-02T10:01:40Z");
    let plan = sim.step();
    assert_eq!(created_times(&plan), [at("2026-03-02T10:01:00Z")]);
    assert_eq!(
        sim.condition(ctype::ON_SCHEDULE).status,
        "True",
        "40 s late is within 60 s"
    );
}

#[test]
fn missed_past_the_deadline_is_a_warning_once() {
    let mut s = schedule("*/5 * * * *", "2026-03-02T10:00:30Z");
    s.spec.starting_deadline_seconds = Some(10);
    let mut sim = Sim::new(s, "2026-03-02T10:05:30Z");
    let plan = sim.skipped(
        "2026-03-02T10:05:30Z",
        reason::STARTING_DEADLINE_EXCEEDED,
        "2026-03-02T10:05:00Z",
        (true, event::START_MISSED),
    );
    let until_next = Duration::from_secs(270) + REQUEUE_SLACK;
    assert_eq!(plan.requeue_after, Some(until_next), "10:10");
    // Reconciled again: the same miss, no second Event, no write.
    sim.quiet("2026-03-02T10:06:00Z");
    // The next time on time: started, the condition is True again.
    let plan = sim.step_at("2026-03-02T10:10:02Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:10:00Z")]);
    sim.on_schedule("True", reason::NO_START_MISSED);
    assert!(plan.events.is_empty(), "no Event for a recovery");
}

#[test]
fn more_than_a_hundred_missed_starts_the_latest_and_warns() {
    let mut sim = Sim::every_minute("2026-03-02T08:00:00Z", "2026-03-02T10:21:10Z");
    let plan = sim.step();
    assert_eq!(created_times(&plan), [at("2026-03-02T10:21:00Z")]);
    let c = sim.condition(ctype::ON_SCHEDULE);
    assert_eq!(c.reason, reason::TOO_MANY_MISSED_STARTS);
    assert_eq!(events(&plan), [(true, event::TOO_MANY_MISSED_STARTS)]);
    // A few missed (the operator was down for 5 minutes): the latest runs, no warning.
    let first = sim.created[0].clone();
    sim.finish(&first, Phase::Succeeded);
    let plan = sim.step_at("2026-03-02T10:26:05Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:26:00Z")]);
    assert_eq!(sim.condition(ctype::ON_SCHEDULE).status, "True");
    assert!(plan.events.is_empty());
}

#[test]
fn suspend_creates_nothing_but_still_prunes_and_resumes_like_cronjob() {
    let mut s = schedule("* * * * *", "2026-03-02T10:00:30Z");
    s.spec.successful_tests_history_limit = 1;
    s.spec.concurrency_policy = ConcurrencyPolicy::Allow;
    let mut sim = Sim::new(s, "2026-03-02T10:01:00Z");
    sim.step();
    sim.step_at("2026-03-02T10:02:00Z");
    assert_eq!(sim.created.len(), 2);
    sim.finish("nightly-29540761", Phase::Succeeded);
    sim.clock.advance(SignedDuration::from_secs(5));
    sim.finish("nightly-29540762", Phase::Succeeded);

    sim.schedule.spec.suspend = true;
    let plan = sim.step_at("2026-03-02T10:05:00Z");
    assert!(plan.create.is_empty());
    assert_eq!(
        deleted(&plan),
        [("nightly-29540761", DeleteWhy::SuccessfulHistory)]
    );
    assert_eq!(plan.status.next_schedule_time, None);
    assert_eq!(plan.requeue_after, None, "nothing is due while suspended");
    assert_eq!(
        plan.status
            .last_successful_test
            .as_ref()
            .map(|t| t.name.as_str()),
        Some("nightly-29540762")
    );
    sim.quiet("2026-03-02T10:06:00Z");

    // Resumed without a deadline: the most recent missed time starts at once.
    sim.schedule.spec.suspend = false;
    let plan = sim.step_at("2026-03-02T10:07:30Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:07:00Z")]);
}

#[test]
fn forbid_holds_back_while_a_test_runs_then_starts_the_latest() {
    let mut sim = Sim::every_minute("2026-03-02T10:00:30Z", "2026-03-02T10:01:00Z");
    assert_eq!(
        sim.schedule.spec.concurrency_policy,
        ConcurrencyPolicy::Forbid
    );
    sim.step();
    let plan = sim.skipped(
        "2026-03-02T10:02:00Z",
        reason::CONCURRENT_TEST_RUNNING,
        "nightly-29540761",
        (false, event::CONCURRENT_TEST_RUNNING),
    );
    assert_eq!(
        plan.status.last_schedule_time,
        Some(Time(at("2026-03-02T10:01:00Z")))
    );
    // Again within the minute: no second Event.
    sim.quiet("2026-03-02T10:02:20Z");
    // The next minute is held back too.
    let plan = sim.step_at("2026-03-02T10:03:00Z");
    assert!(plan.create.is_empty());
    assert_eq!(plan.events.len(), 1);
    // The running test finishes: the latest due time starts, 10:02 never does.
    sim.clock.set(at("2026-03-02T10:03:10Z"));
    sim.finish("nightly-29540761", Phase::Succeeded);
    let plan = sim.step();
    assert_eq!(created_times(&plan), [at("2026-03-02T10:03:00Z")]);
    assert_eq!(sim.created, ["nightly-29540761", "nightly-29540763"]);
    assert_eq!(sim.condition(ctype::ON_SCHEDULE).status, "True");
}

#[test]
fn allow_runs_side_by_side_and_replace_replaces() {
    let mut s = schedule("* * * * *", "2026-03-02T10:00:30Z");
    s.spec.concurrency_policy = ConcurrencyPolicy::Allow;
    let mut sim = Sim::new(s, "2026-03-02T10:01:00Z");
    sim.step();
    let plan = sim.step_at("2026-03-02T10:02:00Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:02:00Z")]);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.status.active_count, Some(2));
    assert_eq!(
        plan.status
            .active
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["nightly-29540761", "nightly-29540762"],
        "oldest first"
    );

    sim.schedule.spec.concurrency_policy = ConcurrencyPolicy::Replace;
    let plan = sim.step_at("2026-03-02T10:03:00Z");
    assert_eq!(
        deleted(&plan),
        [
            ("nightly-29540761", DeleteWhy::Replaced),
            ("nightly-29540762", DeleteWhy::Replaced)
        ]
    );
    assert_eq!(created_times(&plan), [at("2026-03-02T10:03:00Z")]);
    assert_eq!(plan.status.active_count, Some(1));
    assert_eq!(plan.status.active[0].name, "nightly-29540763");
    // Replace with nothing running: a plain start.
    sim.finish("nightly-29540763", Phase::Failed);
    let plan = sim.step_at("2026-03-02T10:04:00Z");
    assert!(plan.delete.is_empty());
    assert_eq!(created_times(&plan), [at("2026-03-02T10:04:00Z")]);
}

#[test]
fn history_limits_prune_the_oldest_and_keep_the_last_results() {
    let mut s = schedule("* * * * *", "2026-03-02T10:00:30Z");
    s.spec.concurrency_policy = ConcurrencyPolicy::Allow;
    s.spec.successful_tests_history_limit = 2;
    s.spec.failed_tests_history_limit = 0;
    let mut sim = Sim::new(s, "2026-03-02T10:01:00Z");
    for minute in 1..=5 {
        sim.step_at(&format!("2026-03-02T10:0{minute}:00Z"));
    }
    assert_eq!(sim.created.len(), 5);
    sim.clock.set(at("2026-03-02T10:05:30Z"));
    for (i, name) in sim.created.clone().iter().enumerate() {
        sim.clock.advance(SignedDuration::from_secs(1));
        let phase = if i == 3 {
            Phase::Failed
        } else {
            Phase::Succeeded
        };
        sim.finish(name, phase);
    }
    let plan = sim.step_at("2026-03-02T10:05:40Z");
    assert_eq!(
        deleted(&plan),
        [
            ("nightly-29540761", DeleteWhy::SuccessfulHistory),
            ("nightly-29540762", DeleteWhy::SuccessfulHistory),
            ("nightly-29540764", DeleteWhy::FailedHistory),
        ]
    );
    let st = &plan.status;
    let last_ok = st.last_successful_test.as_ref().unwrap();
    assert_eq!(last_ok.name, "nightly-29540765");
    assert_eq!(
        last_ok.scheduled_time,
        Some(Time(at("2026-03-02T10:05:00Z")))
    );
    assert_eq!(last_ok.reason.as_deref(), Some("TestSucceeded"));
    assert_eq!(
        last_ok.result.as_ref().and_then(|r| r.total_requests),
        Some(100)
    );
    let last_failed = st.last_failed_test.as_ref().unwrap();
    assert_eq!(
        last_failed.name, "nightly-29540764",
        "kept in status although deleted"
    );
    assert_eq!(
        st.last_result,
        Some(Phase::Succeeded),
        "the success finished later"
    );
    assert_eq!(st.active_count, Some(0));
    // Once pruned, the status stays as it was.
    sim.quiet("2026-03-02T10:05:41Z");
}

#[test]
fn daylight_saving_changes_in_the_schedules_time_zone() {
    let mut s = schedule("30 2 * * *", "2026-03-27T12:00:00Z");
    s.spec.time_zone = Some("Europe/Berlin".into());
    let mut sim = Sim::new(s, "2026-03-28T01:30:00Z");
    // 02:30 CET.
    assert_eq!(created_times(&sim.step()), [at("2026-03-28T01:30:00Z")]);
    sim.finish("nightly-29577690", Phase::Succeeded);
    // 2026-03-29 has no 02:30 in Berlin (02:00 CET → 03:00 CEST): skipped.
    let plan = sim.step_at("2026-03-29T01:30:00Z");
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.status.next_schedule_time,
        Some(Time(at("2026-03-30T00:30:00Z")))
    );
    assert_eq!(plan.requeue_after, Some(MAX_REQUEUE), "bounded");
    assert_eq!(
        created_times(&sim.step_at("2026-03-30T00:30:00Z")),
        [at("2026-03-30T00:30:00Z")]
    );

    // 2026-10-25 has 02:30 twice (CEST, then CET): once, the first.
    let mut s = schedule("30 2 * * *", "2026-10-24T12:00:00Z");
    s.spec.time_zone = Some("Europe/Berlin".into());
    let mut sim = Sim::new(s, "2026-10-25T00:30:00Z");
    assert_eq!(created_times(&sim.step()), [at("2026-10-25T00:30:00Z")]);
    let name = sim.created[0].clone();
    sim.finish(&name, Phase::Succeeded);
    let plan = sim.step_at("2026-10-25T01:30:00Z");
    assert!(
        plan.create.is_empty(),
        "the repeated 02:30 does not run again"
    );
    assert_eq!(
        plan.status.next_schedule_time,
        Some(Time(at("2026-10-26T01:30:00Z")))
    );
}

#[test]
fn run_now_starts_one_test_per_token() {
    let mut s = schedule("0 0 1 1 *", "2026-03-02T10:00:00Z");
    s.spec.suspend = true;
    let mut sim = Sim::new(s, "2026-03-02T10:00:05Z");
    sim.run_now("ci-41");
    let plan = sim.step();
    assert_eq!(
        plan.create.len(),
        1,
        "suspend does not hold back a run on demand"
    );
    let c = &plan.create[0];
    assert_eq!(c.name, runs::run_now_test_name("nightly", "ci-41"));
    assert_eq!(c.run_now.as_deref(), Some("ci-41"));
    assert_eq!(c.scheduled, at("2026-03-02T10:00:05Z"));
    assert_eq!(plan.status.last_run_now_token.as_deref(), Some("ci-41"));
    assert_eq!(plan.status.last_schedule_time, None, "not a scheduled time");
    assert_eq!(plan.status.active_count, Some(1));
    // The same token again: nothing.
    assert!(sim.step_at("2026-03-02T10:01:00Z").create.is_empty());
    // It finishes and is pruned (limit 0): the token stays handled.
    sim.schedule.spec.successful_tests_history_limit = 0;
    let name = sim.created[0].clone();
    sim.finish(&name, Phase::Succeeded);
    let plan = sim.step();
    assert_eq!(
        deleted(&plan),
        [(name.as_str(), DeleteWhy::SuccessfulHistory)]
    );
    assert!(plan.create.is_empty());
    assert!(sim.step().create.is_empty());
    // A new token: one more, while Forbid would hold a scheduled one back.
    sim.run_now(" ci-42 ");
    let plan = sim.step();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0].name,
        runs::run_now_test_name("nightly", "ci-42")
    );
    assert!(sim.step().create.is_empty());
    // A blank annotation is no token.
    sim.run_now("  ");
    assert!(sim.step().create.is_empty());
}

#[test]
fn a_run_now_test_in_the_cache_counts_as_handled() {
    // The status write of the create was lost (restart): the cache shows the test.
    let mut s = schedule("0 0 1 1 *", "2026-03-02T10:00:00Z");
    s.metadata.annotations = Some([(RUN_NOW_ANNOTATION.to_owned(), "x".to_owned())].into());
    let sim = Sim {
        owned: vec![OwnedTest {
            name: runs::run_now_test_name("nightly", "x"),
            run_now_token: Some("x".into()),
            ..OwnedTest::default()
        }],
        ..Sim::new(s, "2026-03-02T10:05:00Z")
    };
    let plan = sim.plan();
    assert!(plan.create.is_empty());
    assert_eq!(plan.status.last_run_now_token.as_deref(), Some("x"));
    assert_eq!(plan.status.active_count, Some(1));
}

#[test]
fn restarts_and_lagging_caches_never_create_a_time_twice() {
    let base = Sim::every_minute("2026-03-02T10:00:30Z", "2026-03-02T10:01:05Z");
    let first = base.plan();
    assert_eq!(base.plan(), first, "deterministic");
    assert_eq!(first.create.len(), 1);

    // The test was created but the status write was lost (the process died).
    let mut lost_status = Sim::new(base.schedule.clone(), "2026-03-02T10:01:05Z");
    lost_status.apply(&first);
    lost_status.status = None;
    assert!(
        lost_status.plan().create.is_empty(),
        "the owned test's name tells"
    );
    // And a replica that started later than 10:02 sees 10:02 due, not 10:01.
    let plan = lost_status.step_at("2026-03-02T10:02:01Z");
    assert!(plan.create.is_empty(), "Forbid: 10:01 still runs");

    // The status was written, the test cache does not show the test yet.
    let mut lagging = Sim::new(base.schedule.clone(), "2026-03-02T10:01:05Z");
    lagging.apply(&first);
    lagging.owned.clear();
    let plan = lagging.plan();
    assert!(plan.create.is_empty(), "lastScheduleTime tells");

    // A clock jump back: nothing is created again; forward again: the next minute.
    let mut jumpy = Sim::new(base.schedule.clone(), "2026-03-02T10:01:05Z");
    jumpy.schedule.spec.concurrency_policy = ConcurrencyPolicy::Allow;
    jumpy.step();
    let plan = jumpy.step_at("2026-03-02T09:00:00Z");
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.status.next_schedule_time,
        Some(Time(at("2026-03-02T10:02:00Z")))
    );
    assert_eq!(plan.requeue_after, Some(MAX_REQUEUE));
    let plan = jumpy.step_at("2026-03-02T10:02:00Z");
    assert_eq!(created_times(&plan), [at("2026-03-02T10:02:00Z")]);
    assert_eq!(jumpy.created.len(), 2);
}

#[test]
fn an_invalid_schedule_is_a_condition_and_one_warning() {
    let mut s = schedule("61 * * * *", "2026-03-02T10:00:00Z");
    s.spec.successful_tests_history_limit = 0;
    let mut sim = Sim::new(s, "2026-03-02T10:05:00Z");
    sim.owned.push(OwnedTest {
        name: "nightly-1".into(),
        ..OwnedTest::default()
    });
    sim.finish("nightly-1", Phase::Succeeded);
    let plan = sim.step();
    assert!(plan.create.is_empty());
    assert_eq!(
        deleted(&plan),
        [("nightly-1", DeleteWhy::SuccessfulHistory)],
        "still prunes"
    );
    assert_eq!(plan.requeue_after, None);
    let c = sim.condition(ctype::SCHEDULE_VALID);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", reason::INVALID_SCHEDULE)
    );
    assert!(c.message.contains("spec.schedule"), "{}", c.message);
    assert_eq!(plan.events.len(), 1);
    assert_eq!(plan.events[0].reason, event::INVALID_SCHEDULE);
    assert!(sim.step().events.is_empty());

    let mut never = Sim::new(
        schedule("0 0 30 2 *", "2026-03-02T10:00:00Z"),
        "2026-03-02T10:05:00Z",
    );
    never.step();
    assert_eq!(
        never.condition(ctype::SCHEDULE_VALID).reason,
        reason::NEVER_DUE
    );
}

#[test]
fn transition_times_move_only_with_the_status() {
    let mut sim = Sim::every_minute("2026-03-02T10:00:30Z", "2026-03-02T10:01:00Z");
    sim.step();
    let t0 = sim.condition(ctype::ON_SCHEDULE).last_transition_time;
    sim.step_at("2026-03-02T10:02:00Z");
    let held = sim.condition(ctype::ON_SCHEDULE);
    assert_eq!(held.status, "False");
    assert_ne!(held.last_transition_time, t0);
    sim.step_at("2026-03-02T10:03:00Z");
    assert_eq!(
        sim.condition(ctype::ON_SCHEDULE).last_transition_time,
        held.last_transition_time,
        "still False: the message changed, not the status"
    );
    assert_eq!(
        sim.condition(ctype::SCHEDULE_VALID).last_transition_time,
        Time(at("2026-03-02T10:01:00Z"))
    );
    // A spec change: the generation is observed.
    sim.schedule.metadata.generation = Some(2);
    let plan = sim.step();
    assert_eq!(plan.status.observed_generation, Some(2));
    assert!(
        plan.status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
}

#[test]
fn only_the_schedules_own_live_tests_are_its() {
    let s = schedule("* * * * *", "2026-03-02T10:00:30Z");
    let mut test = runs::test_for(&s, at("2026-03-02T10:01:00Z")).unwrap();
    assert!(is_owned_by(&s, &test));
    let view = OwnedTest::of("nightly", &test);
    assert_eq!(view.scheduled, Some(at("2026-03-02T10:01:00Z")));
    assert_eq!(view.run_now_token, None);

    let mut other_uid = test.clone();
    other_uid.metadata.owner_references = Some(vec![OwnerReference {
        uid: "uid-2".into(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    assert!(!is_owned_by(&s, &other_uid));
    let mut other_label = test.clone();
    other_label
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(SCHEDULE_LABEL.into(), "other".into());
    assert!(!is_owned_by(&s, &other_label));
    let mut other_ns = test.clone();
    other_ns.metadata.namespace = Some("elsewhere".into());
    assert!(!is_owned_by(&s, &other_ns));
    test.metadata.deletion_timestamp = Some(Time(at("2026-03-02T10:02:00Z")));
    assert!(!is_owned_by(&s, &test), "being deleted");

    let manual = runs::run_now_test_for(&s, "tok", at("2026-03-02T10:03:00Z")).unwrap();
    assert!(is_owned_by(&s, &manual));
    let view = OwnedTest::of("nightly", &manual);
    assert_eq!(view.run_now_token.as_deref(), Some("tok"));
    assert_eq!(view.scheduled, Some(at("2026-03-02T10:03:00Z")));
}
