//! The phase machine: a pure function from what the operator observes to the
//! status it should report, and the Events that go with each transition.
//!
//! Pending until the master pod runs, then Running, then Succeeded or Failed
//! from the master Job (or Failed when pods stay unhealthy past the grace
//! period). Terminal phases are final; nothing flaps back.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::v2::ThresholdsSpec;
use crate::api::{LocustTestStatus, Phase, condition_type as ct};
use crate::thresholds;

use super::conditions::{self, Completion, Draft, seconds};
use super::model::{JobOutcome, Observed, Transition};

/// Condition reasons (the table is [`crate::api::condition_reason`]; this
/// path is kept for its users).
pub use crate::api::condition_reason as reason;

/// Identity of the test needed to derive its status.
#[derive(Clone, Debug, PartialEq)]
pub struct TestView<'a> {
    pub generation: Option<i64>,
    pub expected_workers: i32,
    pub spec_hash: &'a str,
    pub status: Option<&'a LocustTestStatus>,
    /// `spec.thresholds`, checked when the master Job completes.
    pub thresholds: Option<&'a ThresholdsSpec>,
}

/// The derived status, the Events, and when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    pub status: LocustTestStatus,
    pub events: Vec<Transition>,
    /// Wake up then even if nothing changes (grace-period deadline).
    pub requeue_after: Option<Duration>,
}

/// The verdict on a completed master Job: `Ok` to succeed, else the
/// `TestCompleted` reason and message of the failure.
fn completed_verdict(
    thresholds: Option<&ThresholdsSpec>,
    st: &LocustTestStatus,
) -> Result<(), (&'static str, String)> {
    let Some(t) = thresholds.filter(|t| thresholds::any_set(t)) else {
        return Ok(());
    };
    let Some(result) = &st.result else {
        let why = st
            .conditions
            .iter()
            .find(|c| c.type_ == ct::STATS_AVAILABLE && c.status == "False")
            .map(|c| format!(": {}", c.message))
            .unwrap_or_default();
        return Err((
            reason::RESULTS_UNAVAILABLE,
            format!(
                "master Job completed but no final statistics were read from the master, so the thresholds cannot be checked{why}"
            ),
        ));
    };
    thresholds::evaluate(t, result).map_err(|e| {
        let prefix = match e {
            thresholds::ThresholdError::Breached { .. } => "thresholds breached",
            thresholds::ThresholdError::Unavailable(_) => "thresholds cannot be checked",
        };
        (e.reason(), format!("{prefix}: {e}"))
    })
}

/// The phase, and how the test ended if it did. `st` is the status derived
/// so far (with this reconcile's statistics); `unhealthy_too_long` the
/// failure of pods unhealthy past the grace period.
fn phase(
    test: &TestView<'_>,
    obs: &Observed,
    st: &LocustTestStatus,
    unhealthy_too_long: Option<String>,
) -> (Phase, Option<Completion>) {
    let done = |failed, reason, message| {
        Some(Completion {
            failed,
            reason,
            message,
        })
    };
    let workers_failed = obs
        .worker_outcome
        .as_ref()
        .and_then(|o| o.failure("worker"));
    // A master lost mid-run exits 0 on SIGTERM like one that finished, so its
    // Job may complete: the loss, seen on the pod, decides. A Job that failed
    // (exit code, `podFailurePolicy`) adds its own words.
    let master_failed = obs
        .master_outcome
        .as_ref()
        .and_then(|o| o.failure("master"));
    if let Some(how) = &obs.master_lost {
        let job = master_failed
            .as_deref()
            .map(|f| format!("; {f}"))
            .unwrap_or_default();
        return (
            Phase::Failed,
            done(
                true,
                reason::MASTER_LOST,
                format!(
                    "the master was lost before the run ended: {how}; the master holds the run's state and is never restarted, so the run is incomplete (delete and recreate the test to run it again){job}"
                ),
            ),
        );
    }
    match (&obs.master_outcome, unhealthy_too_long) {
        (Some(JobOutcome::Complete), _) => match completed_verdict(test.thresholds, st) {
            Ok(()) => (
                Phase::Succeeded,
                done(
                    false,
                    reason::TEST_SUCCEEDED,
                    "master Job completed".to_owned(),
                ),
            ),
            Err((why, message)) => (Phase::Failed, done(true, why, message)),
        },
        (Some(JobOutcome::Failed { .. }), _) => {
            let job = master_failed.unwrap_or_default();
            // A breach is the more useful reason (Locust exits non-zero on
            // failed requests); the Job's failure stays in the message.
            match completed_verdict(test.thresholds, st) {
                Err((why, m)) if why == reason::THRESHOLDS_BREACHED => {
                    (Phase::Failed, done(true, why, format!("{m}; {job}")))
                }
                _ => (Phase::Failed, done(true, reason::TEST_FAILED, job)),
            }
        }
        // The workers are gone for good while the master still runs: the
        // rest of the run would measure nothing meaningful.
        (None, _) if workers_failed.is_some() => (
            Phase::Failed,
            workers_failed.and_then(|job| done(true, reason::WORKERS_FAILED, job)),
        ),
        (None, Some(msg)) => (Phase::Failed, done(true, reason::PODS_UNHEALTHY, msg)),
        (None, None) => {
            let prev_phase = test.status.and_then(|s| s.phase);
            if obs.master_running_since.is_some() || prev_phase == Some(Phase::Running) {
                (Phase::Running, None)
            } else if let Some(f) = &obs.start_failure {
                (Phase::Failed, done(true, f.reason, f.message.clone()))
            } else {
                (Phase::Pending, None)
            }
        }
    }
}

/// Derives the next status from the previous one and the observations:
/// one function per condition ([`super::conditions`]), the phase from
/// [`phase`].
pub fn derive(test: &TestView<'_>, obs: &Observed, now: Timestamp, grace: Duration) -> Derived {
    let prev = test.status.cloned().unwrap_or_default();
    let mut d = Draft::new(&prev, test.generation, now);
    d.status.observed_generation = test.generation;
    d.status.expected_workers = Some(test.expected_workers);

    // Spec drift is reported in every phase, terminal ones included.
    let drifted = obs
        .children_spec_hash
        .as_deref()
        .is_some_and(|h| h != test.spec_hash);
    conditions::spec_drifted(&mut d, drifted);
    if prev.phase.is_some_and(Phase::is_terminal) {
        // Terminal tests are left alone: only the drift report above may change.
        return Derived {
            status: d.status,
            events: d.events,
            requeue_after: None,
        };
    }

    conditions::ready(&mut d, obs);
    let clock = conditions::pods_healthy(&mut d, obs.health.as_ref(), grace);
    let master_workers = conditions::stats_available(&mut d, obs.stats.as_ref());
    let (phase, completion) = phase(test, obs, &d.status, clock.unhealthy_too_long);

    let mut requeue_after = clock.requeue_after;
    if phase == Phase::Running && d.status.start_time.is_none() {
        d.status.start_time = Some(seconds(obs.master_running_since.unwrap_or(now)));
    }
    d.status.phase = Some(phase);
    if completion.is_some() {
        d.status.completion_time = Some(seconds(now));
        if d.status.start_time.is_none() {
            d.status.start_time = obs.master_running_since.map(seconds);
        }
        d.status.connected_workers = Some(0);
        requeue_after = None;
    } else {
        // The master's own count when it answered, else the running worker pods.
        let connected = master_workers.unwrap_or(obs.running_workers);
        d.status.connected_workers = Some(connected);
        let next = match phase {
            Phase::Running => obs.next_stats_read,
            Phase::Pending => obs.start_deadline_in,
            _ => None,
        };
        if let Some(next) = next {
            requeue_after = Some(requeue_after.map_or(next, |r: Duration| r.min(next)));
        }
        conditions::workers_connected(&mut d, connected, test.expected_workers);
    }
    conditions::test_completed(&mut d, phase, completion);

    Derived {
        status: d.status,
        events: d.events,
        requeue_after,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::status::{LiveStats, TestResult};
    use crate::controller::conditions::find;
    use crate::controller::model::Child;
    use crate::controller::model::StatsObservation;
    use crate::controller::pod_health::{HealthReport, Problem};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    const GRACE: Duration = Duration::from_secs(120);

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn view(status: Option<&LocustTestStatus>) -> TestView<'_> {
        TestView {
            generation: Some(1),
            expected_workers: 2,
            spec_hash: "h1",
            status,
            thresholds: None,
        }
    }

    /// The Service and both Jobs exist, made from spec hash `h1`.
    pub(crate) fn created() -> Observed {
        Observed {
            service_exists: true,
            master_job_exists: true,
            worker_job_exists: true,
            children_spec_hash: Some("h1".into()),
            ..Default::default()
        }
    }

    /// `derive` for a test with no status yet, at `t(s)`.
    fn derive_new(obs: &Observed, s: i64) -> Derived {
        derive(&view(None), obs, t(s), GRACE)
    }

    /// `derive` for a test whose status `prev` derived, at `t(s)`.
    fn derive_after(prev: &Derived, obs: &Observed, s: i64) -> Derived {
        derive(&view(Some(&prev.status)), obs, t(s), GRACE)
    }

    fn cond<'a>(st: &'a LocustTestStatus, ty: &str) -> &'a Condition {
        find(&st.conditions, ty).unwrap_or_else(|| panic!("no {ty} condition"))
    }

    /// Asserts `d` is Failed, its TestCompleted condition saying `reason`
    /// and exactly `message`.
    #[track_caller]
    fn assert_failed_with(d: &Derived, reason: &str, message: &str) {
        assert_eq!(d.status.phase, Some(Phase::Failed));
        let tc = cond(&d.status, ct::TEST_COMPLETED);
        assert_eq!(tc.reason, reason);
        assert_eq!(tc.message, message);
    }

    /// Asserts `d`'s TestCompleted condition has `reason` and a message
    /// ending in `suffix`.
    #[track_caller]
    fn assert_completed_ends_with(d: &Derived, reason: &str, suffix: &str) {
        let tc = cond(&d.status, ct::TEST_COMPLETED);
        assert_eq!(tc.reason, reason);
        assert!(tc.message.ends_with(suffix), "{}", tc.message);
    }

    #[test]
    fn a_test_that_never_starts_fails_at_its_start_deadline_with_the_cause() {
        use crate::controller::model::StartFailure;
        // Before the deadline: Pending, and a wake-up at the deadline.
        let waiting = Observed {
            start_deadline_in: Some(Duration::from_secs(30)),
            ..created()
        };
        let d1 = derive_new(&waiting, 0);
        assert_eq!(d1.status.phase, Some(Phase::Pending));
        assert_eq!(d1.requeue_after, Some(Duration::from_secs(30)));
        // Past it: Failed with the diagnosed reason, and a Warning Event.
        for why in [reason::CONFIG_ERROR, reason::START_TIMED_OUT] {
            let past = Observed {
                start_failure: Some(StartFailure {
                    reason: why,
                    message: "the master pod did not run within the start timeout (600s)".into(),
                }),
                ..created()
            };
            let d2 = derive_after(&d1, &past, 600);
            assert_failed_with(
                &d2,
                why,
                "the master pod did not run within the start timeout (600s)",
            );
            assert_eq!(d2.requeue_after, None);
            assert!(
                d2.events
                    .iter()
                    .any(|e| e.warning && e.reason == crate::api::event_reason::TEST_FAILED)
            );
        }
        // A master that runs wins over a late deadline check.
        let ran = Observed {
            master_running_since: Some(t(590)),
            start_failure: Some(StartFailure {
                reason: reason::START_TIMED_OUT,
                message: "late".into(),
            }),
            ..created()
        };
        assert_eq!(
            derive_after(&d1, &ran, 600).status.phase,
            Some(Phase::Running)
        );
    }

    #[test]
    fn pending_then_running_then_succeeded() {
        let d1 = derive_new(&created(), 0);
        assert_eq!(d1.status.phase, Some(Phase::Pending));
        assert_eq!(cond(&d1.status, ct::READY).status, "True");
        assert_eq!(
            cond(&d1.status, ct::TEST_COMPLETED).reason,
            reason::TEST_PENDING
        );
        assert_eq!(
            cond(&d1.status, ct::WORKERS_CONNECTED).message,
            "0/2 workers connected"
        );
        assert_eq!(d1.status.expected_workers, Some(2));
        assert!(d1.events.is_empty());

        let running = Observed {
            master_running_since: Some(t(5)),
            running_workers: 2,
            ..created()
        };
        let d2 = derive_after(&d1, &running, 6);
        assert_eq!(d2.status.phase, Some(Phase::Running));
        assert_eq!(d2.status.start_time, Some(seconds(t(5))));
        assert_eq!(d2.status.connected_workers, Some(2));
        assert_eq!(
            cond(&d2.status, ct::WORKERS_CONNECTED).reason,
            reason::ALL_WORKERS_CONNECTED
        );
        assert_eq!(d2.events.len(), 1);
        assert_eq!(d2.events[0].reason, "TestStarted");

        // Nothing changed: same status, no events (so no write).
        let d2b = derive_after(&d2, &running, 30);
        assert_eq!(d2b.status, d2.status);
        assert!(d2b.events.is_empty());

        let done = Observed {
            master_outcome: Some(JobOutcome::Complete),
            ..created()
        };
        let d3 = derive_after(&d2, &done, 60);
        assert_eq!(d3.status.phase, Some(Phase::Succeeded));
        assert_eq!(d3.status.completion_time, Some(seconds(t(60))));
        assert_eq!(d3.status.start_time, Some(seconds(t(5))));
        assert_eq!(d3.status.connected_workers, Some(0));
        let tc = cond(&d3.status, ct::TEST_COMPLETED);
        assert_eq!(
            (tc.status.as_str(), tc.reason.as_str()),
            ("True", reason::TEST_SUCCEEDED)
        );
        assert_eq!(d3.events[0].reason, "TestSucceeded");
        assert!(!d3.events[0].warning);
    }

    #[test]
    fn failed_workers_fail_a_running_test_but_not_a_finished_one() {
        let worker_failed = Some(JobOutcome::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        });
        let running = Observed {
            master_running_since: Some(t(5)),
            worker_outcome: worker_failed.clone(),
            ..created()
        };
        let d = derive_new(&running, 6);
        assert_failed_with(
            &d,
            reason::WORKERS_FAILED,
            "worker Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
        );
        assert!(d.events[0].warning);

        // The master's own outcome wins: workers failing as the master ends
        // do not turn a completed run into a failure.
        let done = Observed {
            master_outcome: Some(JobOutcome::Complete),
            worker_outcome: worker_failed,
            ..created()
        };
        let d = derive_new(&done, 60);
        assert_eq!(d.status.phase, Some(Phase::Succeeded));

        // A worker Job that completed (workers exited 0) changes nothing.
        let completed_workers = Observed {
            master_running_since: Some(t(5)),
            worker_outcome: Some(JobOutcome::Complete),
            ..created()
        };
        let d = derive_new(&completed_workers, 6);
        assert_eq!(d.status.phase, Some(Phase::Running));
    }

    #[test]
    fn master_failure_fails_the_test() {
        let failed = Observed {
            master_outcome: Some(JobOutcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "Job has reached the specified backoff limit".into(),
            }),
            ..created()
        };
        let d = derive_new(&failed, 1);
        assert_eq!(d.status.phase, Some(Phase::Failed));
        let tc = cond(&d.status, ct::TEST_COMPLETED);
        assert_eq!(tc.reason, reason::TEST_FAILED);
        assert!(tc.message.contains("BackoffLimitExceeded"));
        assert!(d.events[0].warning);
    }

    #[test]
    fn a_lost_master_fails_the_test_even_when_its_job_completes() {
        let how = "pod t-master-x was disrupted (EvictionByEvictionAPI: Eviction API: evicting)";
        for outcome in [None, Some(JobOutcome::Complete)] {
            let lost = Observed {
                master_lost: Some(how.into()),
                master_outcome: outcome.clone(),
                ..running_obs()
            };
            let d = derive_new(&lost, 1);
            assert_eq!(d.status.phase, Some(Phase::Failed), "{outcome:?}");
            let tc = cond(&d.status, ct::TEST_COMPLETED);
            assert_eq!(tc.reason, reason::MASTER_LOST);
            assert!(tc.message.contains(how), "{}", tc.message);
            assert_eq!(d.events.len(), 1);
            assert!(d.events[0].warning);
            assert_eq!(d.events[0].reason, reason::MASTER_LOST);
        }
        // A Job that failed adds its reason to the message.
        let failed = Observed {
            master_lost: Some(how.into()),
            master_outcome: Some(JobOutcome::Failed {
                reason: "PodFailurePolicy".into(),
                message: "master container exited with code 137".into(),
            }),
            ..running_obs()
        };
        let d = derive_new(&failed, 1);
        assert_completed_ends_with(
            &d,
            reason::MASTER_LOST,
            "; master Job failed: PodFailurePolicy: master container exited with code 137",
        );
        // A finished test is not changed by its master pod going away afterwards
        // (ttlSecondsAfterFinished, a manual clean-up).
        let done = derive_new(
            &Observed {
                master_outcome: Some(JobOutcome::Complete),
                ..running_obs()
            },
            1,
        );
        let gone = Observed {
            master_lost: Some("pod t-master-x was deleted".into()),
            master_outcome: Some(JobOutcome::Complete),
            ..running_obs()
        };
        let after = derive_after(&done, &gone, 2);
        assert_eq!(after.status.phase, Some(Phase::Succeeded));
        assert!(after.events.is_empty());
    }

    #[test]
    fn terminal_phases_are_final() {
        let done = derive_new(
            &Observed {
                master_outcome: Some(JobOutcome::Complete),
                ..created()
            },
            1,
        );
        // Children gone (TTL), pods unhealthy, master "running" again: nothing moves.
        let weird = Observed {
            master_running_since: Some(t(2)),
            health: Some(HealthReport {
                problem: Problem::CrashLoop,
                message: "x".into(),
            }),
            children_spec_hash: Some("h1".into()),
            ..Default::default()
        };
        let d = derive_after(&done, &weird, 500);
        assert_eq!(d.status, done.status);
        assert!(d.events.is_empty());
        assert_eq!(d.requeue_after, None);
    }

    #[test]
    fn no_flapping_back_to_pending() {
        let running = derive_new(
            &Observed {
                master_running_since: Some(t(1)),
                ..created()
            },
            1,
        );
        // Master pod momentarily not seen (e.g. cache relist): stays Running.
        let d = derive_after(&running, &created(), 2);
        assert_eq!(d.status.phase, Some(Phase::Running));
    }

    #[test]
    fn unhealthy_pods_fail_after_the_grace_period() {
        let sick = unhealthy(
            Problem::ImagePullError,
            "pod t-master-x: ImagePullError: ImagePullBackOff",
            created(),
        );
        let d1 = derive_new(&sick, 0);
        assert_eq!(d1.status.phase, Some(Phase::Pending));
        let ph = cond(&d1.status, ct::PODS_HEALTHY);
        assert_eq!(
            (ph.status.as_str(), ph.reason.as_str()),
            ("False", "ImagePullError")
        );
        assert!(ph.message.contains("t-master-x"));
        assert_eq!(d1.events[0].reason, "PodsUnhealthy");
        assert_eq!(d1.requeue_after, Some(Duration::from_secs(121)));

        let d2 = derive_after(&d1, &sick, 60);
        assert_eq!(d2.status.phase, Some(Phase::Pending));
        assert!(d2.events.is_empty(), "no repeated warning");
        assert_eq!(d2.requeue_after, Some(Duration::from_secs(61)));

        let d3 = derive_after(&d2, &sick, 120);
        assert_eq!(d3.status.phase, Some(Phase::Failed));
        let tc = cond(&d3.status, ct::TEST_COMPLETED);
        assert_eq!(tc.reason, reason::PODS_UNHEALTHY);
        assert!(tc.message.contains("more than 120s"));
        assert!(tc.message.contains("t-master-x"));
    }

    #[test]
    fn recovering_pods_reset_the_clock() {
        let sick = unhealthy(Problem::Unschedulable, "m", created());
        let d1 = derive_new(&sick, 0);
        let d2 = derive_after(&d1, &created(), 100);
        assert_eq!(cond(&d2.status, ct::PODS_HEALTHY).status, "True");
        let d3 = derive_after(&d2, &sick, 200);
        assert_eq!(
            d3.status.phase,
            Some(Phase::Pending),
            "new grace period from t=200"
        );
    }

    #[test]
    fn spec_drift_is_reported_and_nothing_else_changes() {
        let base = derive_new(&created(), 0);
        let mut v = view(Some(&base.status));
        v.spec_hash = "h2";
        v.generation = Some(2);
        let d = derive(&v, &created(), t(10), GRACE);
        let sd = cond(&d.status, ct::SPEC_DRIFTED);
        assert_eq!(
            (sd.status.as_str(), sd.reason.as_str()),
            ("True", reason::SPEC_CHANGED)
        );
        assert!(sd.message.contains("generation 2"));
        assert_eq!(d.status.phase, Some(Phase::Pending));
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.status.observed_generation, Some(2));
        // Reported once.
        v.status = Some(&d.status);
        let d2 = derive(&v, &created(), t(20), GRACE);
        assert!(d2.events.is_empty());
    }

    #[test]
    fn missing_children_are_reported() {
        let obs = Observed {
            master_job_exists: false,
            missing_not_recreated: vec![Child::MasterJob],
            ..created()
        };
        let d = derive_new(&obs, 0);
        let r = cond(&d.status, ct::READY);
        assert_eq!(r.status, "False");
        assert_eq!(
            r.message,
            "missing master Job: deleted and not recreated because the spec changed since creation: master Job; delete and recreate the test"
        );
    }

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let d1 = derive_new(&created(), 0);
        let d2 = derive_after(&d1, &created(), 50);
        assert_eq!(
            cond(&d1.status, ct::READY).last_transition_time,
            cond(&d2.status, ct::READY).last_transition_time
        );
        let order: Vec<_> = d2
            .status
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(order, ct::ALL.to_vec());
    }

    fn running_obs() -> Observed {
        Observed {
            master_running_since: Some(t(5)),
            running_workers: 1,
            ..created()
        }
    }

    /// `base` with pods reported unhealthy by `problem`.
    fn unhealthy(problem: Problem, message: &str, base: Observed) -> Observed {
        Observed {
            health: Some(HealthReport {
                problem,
                message: message.into(),
            }),
            ..base
        }
    }

    /// Running, with a statistics read of `final_result`.
    fn reading(final_result: Option<TestResult>) -> Observed {
        Observed {
            stats: Some(read(final_result)),
            ..running_obs()
        }
    }

    fn read(final_result: Option<TestResult>) -> StatsObservation {
        StatsObservation::Read {
            live: LiveStats {
                current_users: Some(5),
                requests_per_second: Some(42.5),
                fail_ratio: Some(0.25),
                total_requests: Some(100),
                state: Some(
                    if final_result.is_some() {
                        "stopped"
                    } else {
                        "running"
                    }
                    .into(),
                ),
                ..LiveStats::default()
            },
            workers: Some(2),
            final_result: final_result.map(Box::new),
        }
    }

    fn final_result() -> TestResult {
        TestResult {
            total_requests: Some(100),
            failed_requests: Some(25),
            fail_ratio: Some(0.25),
            p95_response_time: Some(812.0),
            state: Some("stopped".into()),
            ..TestResult::default()
        }
    }

    #[test]
    fn stats_read_sets_live_numbers_and_master_worker_count() {
        let obs = Observed {
            stats: Some(read(None)),
            next_stats_read: Some(Duration::from_secs(10)),
            ..running_obs()
        };
        let d = derive_new(&obs, 6);
        assert_eq!(d.status.phase, Some(Phase::Running));
        assert_eq!(
            d.status.live.as_ref().and_then(|l| l.requests_per_second),
            Some(42.5)
        );
        // The master's count wins over the running pods (1).
        assert_eq!(d.status.connected_workers, Some(2));
        assert_eq!(cond(&d.status, ct::STATS_AVAILABLE).status, "True");
        assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
        assert_eq!(d.status.result, None);
    }

    #[test]
    fn master_worker_count_stands_between_reads() {
        // The master counts 2 worker processes; 1 worker pod runs.
        let first = derive_new(&reading(None), 6);
        assert_eq!(first.status.connected_workers, Some(2));
        // A reconcile between two reads (a pod or Job event, the status
        // write itself) keeps the master's count and writes nothing new.
        let between = derive_after(&first, &running_obs(), 7);
        assert_eq!(between.status.connected_workers, Some(2));
        assert_eq!(between.status, first.status);
        // Once a read fails, the running pods count again.
        let failed = derive_after(
            &first,
            &Observed {
                stats: Some(StatsObservation::Failed {
                    reason: "MasterUnreachable",
                    message: "cannot connect".into(),
                }),
                ..running_obs()
            },
            8,
        );
        assert_eq!(failed.status.connected_workers, Some(1));
        let after_failure = derive_after(&failed, &running_obs(), 9);
        assert_eq!(after_failure.status.connected_workers, Some(1));
        // Before any read, the running pods count.
        let before = derive_new(&running_obs(), 6);
        assert_eq!(before.status.connected_workers, Some(1));
    }

    #[test]
    fn unreachable_master_is_a_condition_and_keeps_numbers() {
        let first = derive_new(&reading(None), 6);
        let obs = Observed {
            stats: Some(StatsObservation::Failed {
                reason: "MasterUnreachable",
                message: "cannot connect".into(),
            }),
            ..running_obs()
        };
        let d = derive_after(&first, &obs, 20);
        let c = cond(&d.status, ct::STATS_AVAILABLE);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "MasterUnreachable")
        );
        assert_eq!(c.message, "cannot connect");
        assert_eq!(d.status.live, first.status.live);
        // Falls back to the running worker pods.
        assert_eq!(d.status.connected_workers, Some(1));
        assert_eq!(d.status.phase, Some(Phase::Running));
    }

    /// A test that read `result` while running, then whose master Job ended
    /// with `outcome`, judged against `thresholds`.
    fn end_with(
        thresholds: &ThresholdsSpec,
        result: Option<TestResult>,
        outcome: JobOutcome,
    ) -> Derived {
        let running = derive_new(&reading(result), 6);
        let v = TestView {
            thresholds: Some(thresholds),
            ..view(Some(&running.status))
        };
        derive(
            &v,
            &Observed {
                master_outcome: Some(outcome),
                ..created()
            },
            t(30),
            GRACE,
        )
    }

    fn complete_with(thresholds: &ThresholdsSpec, result: Option<TestResult>) -> Derived {
        end_with(thresholds, result, JobOutcome::Complete)
    }

    #[test]
    fn thresholds_hold_then_succeeded() {
        let t = ThresholdsSpec {
            max_fail_ratio: Some(0.5),
            ..Default::default()
        };
        let d = complete_with(&t, Some(final_result()));
        assert_eq!(d.status.phase, Some(Phase::Succeeded));
        assert_eq!(d.status.result, Some(final_result()));
    }

    #[test]
    fn thresholds_breached_then_failed() {
        let t = ThresholdsSpec {
            max_fail_ratio: Some(0.01),
            max_p95_response_time: Some(500.0),
            ..Default::default()
        };
        let d = complete_with(&t, Some(final_result()));
        assert_failed_with(
            &d,
            reason::THRESHOLDS_BREACHED,
            "thresholds breached: fail ratio 0.25 > 0.01; p95 response time 812 ms > 500 ms",
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.reason == "ThresholdsBreached" && e.warning)
        );
    }

    #[test]
    fn thresholds_without_result_fail_as_unavailable() {
        let t = ThresholdsSpec {
            max_fail_ratio: Some(0.01),
            ..Default::default()
        };
        let d = complete_with(&t, None);
        assert_eq!(d.status.phase, Some(Phase::Failed));
        assert_eq!(
            cond(&d.status, ct::TEST_COMPLETED).reason,
            reason::RESULTS_UNAVAILABLE
        );
        // No thresholds: a completed Job succeeds without a result.
        let d = complete_with(&ThresholdsSpec::default(), None);
        assert_eq!(d.status.phase, Some(Phase::Succeeded));
    }

    #[test]
    fn breach_wins_over_a_failed_job() {
        let th = ThresholdsSpec {
            max_fail_ratio: Some(0.01),
            ..Default::default()
        };
        let d = end_with(
            &th,
            Some(final_result()),
            JobOutcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "master container exited with code 1".into(),
            },
        );
        assert_completed_ends_with(
            &d,
            reason::THRESHOLDS_BREACHED,
            "master Job failed: BackoffLimitExceeded: master container exited with code 1",
        );
    }

    #[test]
    fn every_type_and_reason_written_is_in_the_tables() {
        use crate::api::{condition_reason, event_reason};
        let sick = |problem| unhealthy(problem, "m", running_obs());
        let failed_job = Some(JobOutcome::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
        });
        let mut outcomes: Vec<Derived> = vec![
            derive_new(&Observed::default(), 0),
            derive_new(&created(), 0),
        ];
        let at_six = [
            running_obs(),
            reading(None),
            Observed {
                master_outcome: Some(JobOutcome::Complete),
                ..created()
            },
            Observed {
                master_outcome: failed_job.clone(),
                ..created()
            },
            Observed {
                worker_outcome: failed_job,
                ..running_obs()
            },
            Observed {
                master_lost: Some("pod p was deleted".into()),
                ..running_obs()
            },
            Observed {
                children_spec_hash: Some("h0".into()),
                ..created()
            },
            // The start deadline passed (the causes it names are the
            // PodsHealthy reasons, reached below).
            Observed {
                start_failure: Some(crate::controller::model::StartFailure {
                    reason: reason::START_TIMED_OUT,
                    message: "the master pod did not run within the start timeout".into(),
                }),
                ..created()
            },
        ];
        outcomes.extend(at_six.iter().map(|obs| derive_new(obs, 6)));
        for problem in [
            Problem::ImagePullError,
            Problem::ConfigError,
            Problem::Unschedulable,
            Problem::CrashLoop,
            Problem::ContainerFailed,
        ] {
            let first = derive_new(&sick(problem), 0);
            let late = derive_after(&first, &sick(problem), 500);
            outcomes.extend([first, late]);
        }
        let breach = ThresholdsSpec {
            max_fail_ratio: Some(0.01),
            ..Default::default()
        };
        outcomes.push(complete_with(&breach, Some(final_result())));
        outcomes.push(complete_with(&breach, None));
        let mut reasons = std::collections::BTreeSet::new();
        for d in &outcomes {
            for c in &d.status.conditions {
                assert!(ct::ALL.contains(&c.type_.as_str()), "type {}", c.type_);
                assert!(
                    condition_reason::ALL.contains(&c.reason.as_str()),
                    "condition reason {}",
                    c.reason
                );
                reasons.insert(c.reason.clone());
            }
            for e in &d.events {
                assert!(
                    event_reason::ALL.contains(&e.reason),
                    "Event reason {}",
                    e.reason
                );
            }
        }
        // The scenarios reach every reason the phase machine writes (the
        // statistics failures come from `stats::StatsError`).
        let unreached: Vec<_> = condition_reason::ALL
            .iter()
            .filter(|r| !reasons.contains(**r))
            .filter(|r| {
                ![
                    reason::MASTER_UNREACHABLE,
                    reason::MASTER_BAD_RESPONSE,
                    reason::STATS_UNDECODABLE,
                ]
                .contains(r)
            })
            .collect();
        assert!(unreached.is_empty(), "not reached: {unreached:?}");
    }
}
