//! The conditions of a test's status, one function per condition type: each
//! sets its condition (keeping `lastTransitionTime` while the condition's
//! status holds) and the Event of its transition. Pure; the phase machine
//! ([`super::state::derive`]) calls them in order.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{LocustTestStatus, Phase, condition_type as ct, event_reason};

use super::model::Child;
use super::model::{Observed, StatsObservation, Transition};
use super::pod_health::HealthReport;
use crate::api::condition_reason as reason;

/// A time as the API server stores it (RFC 3339, second precision), so that
/// a derived status compares equal to the stored one.
pub(super) fn seconds(ts: Timestamp) -> Time {
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// The condition of type `type_`.
pub(super) fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of type `type_` is True.
pub(super) fn is_true(conds: &[Condition], type_: &str) -> bool {
    find(conds, type_).is_some_and(|c| c.status == "True")
}

/// Sets a condition, keeping `lastTransitionTime` when the status does not
/// change; conditions stay in the order of [`ct::ALL`].
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status_str = if status { "True" } else { "False" };
    let last = match find(conds, type_) {
        Some(c) if c.status == status_str => c.last_transition_time.clone(),
        _ => seconds(now),
    };
    let cond = Condition {
        type_: type_.to_owned(),
        status: status_str.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: last,
    };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = cond,
        None => conds.push(cond),
    }
    conds.sort_by_key(|c| {
        ct::ALL
            .iter()
            .position(|t| *t == c.type_)
            .unwrap_or(ct::ALL.len())
    });
}

/// The status being derived, next to the previous one, and the Events of
/// the transitions so far.
#[derive(Clone, Debug)]
pub(super) struct Draft<'a> {
    pub prev: &'a LocustTestStatus,
    pub status: LocustTestStatus,
    pub events: Vec<Transition>,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

impl<'a> Draft<'a> {
    /// A draft starting from `prev`.
    pub fn new(prev: &'a LocustTestStatus, generation: Option<i64>, now: Timestamp) -> Self {
        Draft {
            prev,
            status: prev.clone(),
            events: Vec::new(),
            generation,
            now,
        }
    }

    fn set(&mut self, type_: &str, status: bool, reason: &str, message: String) {
        set_condition(
            &mut self.status.conditions,
            type_,
            status,
            reason,
            message,
            self.generation,
            self.now,
        );
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.events.push(Transition {
            warning,
            reason,
            message,
        });
    }
}

/// `SpecDrifted`: whether the spec changed since the children were built
/// (reported in every phase); Event `SpecDrifted` when it turns True.
pub(super) fn spec_drifted(d: &mut Draft<'_>, drifted: bool) {
    if drifted {
        if !is_true(&d.prev.conditions, ct::SPEC_DRIFTED) {
            d.event(
                true,
                event_reason::SPEC_DRIFTED,
                "spec changed after the test was created; the change is ignored (tests are immutable: delete and recreate the test to apply it)".into(),
            );
        }
        let message = format!(
            "spec changed at generation {} after the test was created; changes are ignored, delete and recreate the test to apply them",
            d.generation.unwrap_or_default()
        );
        d.set(ct::SPEC_DRIFTED, true, reason::SPEC_CHANGED, message);
    } else {
        d.set(
            ct::SPEC_DRIFTED,
            false,
            reason::NO_DRIFT,
            "spec is the one the test was created with".into(),
        );
    }
}

/// `Ready` while the test runs: whether its three children exist.
pub(super) fn ready(d: &mut Draft<'_>, obs: &Observed) {
    let missing: Vec<&str> = Child::ALL
        .into_iter()
        .filter(|c| !c.exists(obs))
        .map(|c| match c {
            // "master Service" elsewhere; the message has said "Service".
            Child::MasterService => "Service",
            other => other.label(),
        })
        .collect();
    if missing.is_empty() {
        d.set(
            ct::READY,
            true,
            reason::ALL_RESOURCES_CREATED,
            "master Service, master Job and worker Job exist".into(),
        );
    } else {
        let why = if obs.missing_not_recreated.is_empty() {
            "being created".to_owned()
        } else {
            let labels: Vec<&str> = obs
                .missing_not_recreated
                .iter()
                .map(|c| c.label())
                .collect();
            format!(
                "deleted and not recreated because the spec changed since creation: {}; delete and recreate the test",
                labels.join(", ")
            )
        };
        d.set(
            ct::READY,
            false,
            reason::RESOURCES_MISSING,
            format!("missing {}: {why}", missing.join(", ")),
        );
    }
}

/// What the pods' health means for the phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct HealthClock {
    /// Look again then (the grace period ends).
    pub requeue_after: Option<Duration>,
    /// Set once pods have been unhealthy for longer than the grace period:
    /// the failure message.
    pub unhealthy_too_long: Option<String>,
}

/// `PodsHealthy`: the unhealthy pods, if any, and how long they have been
/// (from the condition's `lastTransitionTime`); Event `PodsUnhealthy` when
/// it turns False.
pub(super) fn pods_healthy(
    d: &mut Draft<'_>,
    health: Option<&HealthReport>,
    grace: Duration,
) -> HealthClock {
    let Some(report) = health else {
        d.set(
            ct::PODS_HEALTHY,
            true,
            reason::ALL_PODS_HEALTHY,
            "no pod reports a problem".into(),
        );
        return HealthClock::default();
    };
    let was_healthy =
        find(&d.prev.conditions, ct::PODS_HEALTHY).is_none_or(|c| c.status != "False");
    if was_healthy {
        d.event(true, event_reason::PODS_UNHEALTHY, report.message.clone());
    }
    d.set(
        ct::PODS_HEALTHY,
        false,
        report.problem.reason(),
        report.message.clone(),
    );
    let since = find(&d.status.conditions, ct::PODS_HEALTHY)
        .map(|c| c.last_transition_time.0)
        .unwrap_or(d.now);
    let elapsed = d.now.duration_since(since);
    let grace_signed = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if elapsed >= grace_signed {
        HealthClock {
            requeue_after: None,
            unhealthy_too_long: Some(format!(
                "pods unhealthy for more than {}s: {}",
                grace.as_secs(),
                report.message
            )),
        }
    } else {
        let left = grace_signed - elapsed;
        HealthClock {
            requeue_after: Some(
                Duration::try_from(left)
                    .unwrap_or(grace)
                    .saturating_add(Duration::from_secs(1)),
            ),
            unhealthy_too_long: None,
        }
    }
}

/// `StatsAvailable`, with `live` and `result` from a read of the master this
/// time (kept from the last read otherwise). Returns the master's count of
/// connected workers when it stands.
pub(super) fn stats_available(d: &mut Draft<'_>, stats: Option<&StatsObservation>) -> Option<i32> {
    match stats {
        Some(StatsObservation::Read {
            live,
            workers,
            final_result,
        }) => {
            d.status.live = Some(live.clone());
            if let Some(r) = final_result {
                d.status.result = Some(r.as_ref().clone());
            }
            let message = match &live.state {
                Some(state) => format!("statistics read from the master (Locust state {state})"),
                None => "statistics read from the master".to_owned(),
            };
            d.set(ct::STATS_AVAILABLE, true, reason::STATS_READ, message);
            *workers
        }
        Some(StatsObservation::Failed { reason: r, message }) => {
            d.set(ct::STATS_AVAILABLE, false, r, message.clone());
            None
        }
        None => {
            if find(&d.status.conditions, ct::STATS_AVAILABLE).is_none() {
                d.set(
                    ct::STATS_AVAILABLE,
                    false,
                    reason::WAITING_FOR_MASTER,
                    "statistics are read once the master pod runs".into(),
                );
            }
            // No read this time (the next one is not due yet): the last
            // successful read's worker count stands until the next read,
            // rather than flapping to the running pods in between (which
            // differ from the master's count with `processesPerPod` > 1).
            if is_true(&d.prev.conditions, ct::STATS_AVAILABLE) {
                d.prev.connected_workers
            } else {
                None
            }
        }
    }
}

/// `WorkersConnected` while the test runs: `connected` of `expected`.
pub(super) fn workers_connected(d: &mut Draft<'_>, connected: i32, expected: i32) {
    let (ok, r) = if connected >= expected {
        (true, reason::ALL_WORKERS_CONNECTED)
    } else {
        (false, reason::WAITING_FOR_WORKERS)
    };
    d.set(
        ct::WORKERS_CONNECTED,
        ok,
        r,
        format!("{connected}/{expected} workers connected"),
    );
}

/// How a test ended: the `TestCompleted` reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Completion {
    pub failed: bool,
    pub reason: &'static str,
    pub message: String,
}

/// `TestCompleted` (and the Event of the phase change): False while the test
/// is `Pending` or `Running`, True with the completion's reason once it
/// ended. An ended test also has `Ready` and `WorkersConnected` False with
/// reason `TestFinished`.
pub(super) fn test_completed(d: &mut Draft<'_>, phase: Phase, completion: Option<Completion>) {
    match completion {
        Some(Completion {
            failed,
            reason: why,
            message,
        }) => {
            d.set(ct::TEST_COMPLETED, true, why, message.clone());
            for type_ in [ct::WORKERS_CONNECTED, ct::READY] {
                d.set(
                    type_,
                    false,
                    reason::TEST_FINISHED,
                    "the test has finished".into(),
                );
            }
            d.event(failed, completion_event_reason(failed, why), message);
        }
        None => {
            let (r, m) = if phase == Phase::Running {
                (reason::TEST_IN_PROGRESS, "the test is running")
            } else {
                (reason::TEST_PENDING, "waiting for the master pod to run")
            };
            d.set(ct::TEST_COMPLETED, false, r, m.into());
            if phase == Phase::Running && d.prev.phase != Some(Phase::Running) {
                d.event(
                    false,
                    event_reason::TEST_STARTED,
                    "master pod is running".into(),
                );
            }
        }
    }
}

/// The Event announcing a completion with `TestCompleted` reason `why`.
fn completion_event_reason(failed: bool, why: &str) -> &'static str {
    match why {
        _ if !failed => event_reason::TEST_SUCCEEDED,
        reason::THRESHOLDS_BREACHED => event_reason::THRESHOLDS_BREACHED,
        reason::RESULTS_UNAVAILABLE => event_reason::RESULTS_UNAVAILABLE,
        reason::MASTER_LOST => event_reason::MASTER_LOST,
        _ => event_reason::TEST_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::LiveStats;
    use crate::controller::pod_health::Problem;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn cond<'a>(d: &'a Draft<'_>, ty: &str) -> &'a Condition {
        find(&d.status.conditions, ty).unwrap_or_else(|| panic!("no {ty} condition"))
    }

    #[test]
    fn set_condition_keeps_the_transition_time_and_the_order() {
        let mut conds = Vec::new();
        set_condition(
            &mut conds,
            ct::SPEC_DRIFTED,
            false,
            "A",
            "a".into(),
            Some(1),
            t(0),
        );
        set_condition(&mut conds, ct::READY, true, "B", "b".into(), Some(1), t(1));
        set_condition(&mut conds, ct::READY, true, "C", "c".into(), Some(2), t(2));
        let types: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [ct::READY, ct::SPEC_DRIFTED]);
        assert_eq!(conds[0].last_transition_time, seconds(t(1)));
        assert_eq!(
            (conds[0].reason.as_str(), conds[0].observed_generation),
            ("C", Some(2))
        );
        set_condition(&mut conds, ct::READY, false, "D", "d".into(), Some(2), t(3));
        assert_eq!(conds[0].last_transition_time, seconds(t(3)));
        assert!(!is_true(&conds, ct::READY));
    }

    #[test]
    fn spec_drift_warns_once() {
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, Some(3), t(0));
        spec_drifted(&mut d, false);
        assert_eq!(cond(&d, ct::SPEC_DRIFTED).reason, reason::NO_DRIFT);
        spec_drifted(&mut d, true);
        assert_eq!(cond(&d, ct::SPEC_DRIFTED).reason, reason::SPEC_CHANGED);
        assert!(cond(&d, ct::SPEC_DRIFTED).message.contains("generation 3"));
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].reason, event_reason::SPEC_DRIFTED);
        let prev = d.status.clone();
        let mut d = Draft::new(&prev, Some(3), t(1));
        spec_drifted(&mut d, true);
        assert!(d.events.is_empty());
    }

    #[test]
    fn ready_names_the_missing_children() {
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, None, t(0));
        let mut obs = Observed {
            master_job_exists: true,
            ..Observed::default()
        };
        ready(&mut d, &obs);
        assert_eq!(
            cond(&d, ct::READY).message,
            "missing Service, worker Job: being created"
        );
        obs.service_exists = true;
        obs.worker_job_exists = true;
        ready(&mut d, &obs);
        assert_eq!(cond(&d, ct::READY).reason, reason::ALL_RESOURCES_CREATED);
        assert!(d.events.is_empty());
    }

    #[test]
    fn unhealthy_pods_run_a_grace_clock() {
        let grace = Duration::from_secs(120);
        let report = HealthReport {
            problem: Problem::CrashLoop,
            message: "pod p: CrashLoop".into(),
        };
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, None, t(0));
        assert_eq!(pods_healthy(&mut d, None, grace), HealthClock::default());
        assert_eq!(cond(&d, ct::PODS_HEALTHY).status, "True");
        let clock = pods_healthy(&mut d, Some(&report), grace);
        assert_eq!(clock.requeue_after, Some(Duration::from_secs(121)));
        assert_eq!(clock.unhealthy_too_long, None);
        assert_eq!(cond(&d, ct::PODS_HEALTHY).reason, "CrashLoop");
        assert_eq!(d.events.len(), 1);
        let prev = d.status.clone();
        let mut d = Draft::new(&prev, None, t(120));
        let clock = pods_healthy(&mut d, Some(&report), grace);
        assert_eq!(clock.requeue_after, None);
        assert_eq!(
            clock.unhealthy_too_long.as_deref(),
            Some("pods unhealthy for more than 120s: pod p: CrashLoop")
        );
        assert!(d.events.is_empty(), "warned once");
    }

    #[test]
    fn stats_keep_the_master_count_only_while_readable() {
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, None, t(0));
        assert_eq!(stats_available(&mut d, None), None);
        assert_eq!(
            cond(&d, ct::STATS_AVAILABLE).reason,
            reason::WAITING_FOR_MASTER
        );
        let read = StatsObservation::Read {
            live: LiveStats {
                state: Some("running".into()),
                ..LiveStats::default()
            },
            workers: Some(3),
            final_result: None,
        };
        assert_eq!(stats_available(&mut d, Some(&read)), Some(3));
        assert_eq!(
            cond(&d, ct::STATS_AVAILABLE).message,
            "statistics read from the master (Locust state running)"
        );
        let prev = LocustTestStatus {
            connected_workers: Some(3),
            ..d.status.clone()
        };
        let mut d = Draft::new(&prev, None, t(1));
        assert_eq!(
            stats_available(&mut d, None),
            Some(3),
            "stands between reads"
        );
        let failed = StatsObservation::Failed {
            reason: reason::MASTER_UNREACHABLE,
            message: "m".into(),
        };
        assert_eq!(stats_available(&mut d, Some(&failed)), None);
        assert_eq!(
            cond(&d, ct::STATS_AVAILABLE).reason,
            reason::MASTER_UNREACHABLE
        );
        assert!(d.status.live.is_some(), "numbers kept");
    }

    #[test]
    fn workers_connected_counts_against_the_replicas() {
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, None, t(0));
        workers_connected(&mut d, 1, 2);
        assert_eq!(
            cond(&d, ct::WORKERS_CONNECTED).reason,
            reason::WAITING_FOR_WORKERS
        );
        assert_eq!(
            cond(&d, ct::WORKERS_CONNECTED).message,
            "1/2 workers connected"
        );
        workers_connected(&mut d, 2, 2);
        assert_eq!(cond(&d, ct::WORKERS_CONNECTED).status, "True");
    }

    #[test]
    fn test_completed_follows_the_phase_and_announces_the_end() {
        let prev = LocustTestStatus::default();
        let mut d = Draft::new(&prev, None, t(0));
        test_completed(&mut d, Phase::Pending, None);
        assert_eq!(cond(&d, ct::TEST_COMPLETED).reason, reason::TEST_PENDING);
        assert!(d.events.is_empty());
        test_completed(&mut d, Phase::Running, None);
        assert_eq!(
            cond(&d, ct::TEST_COMPLETED).reason,
            reason::TEST_IN_PROGRESS
        );
        assert_eq!(d.events[0].reason, event_reason::TEST_STARTED);
        for (failed, why, event) in [
            (false, reason::TEST_SUCCEEDED, event_reason::TEST_SUCCEEDED),
            (true, reason::TEST_FAILED, event_reason::TEST_FAILED),
            (true, reason::WORKERS_FAILED, event_reason::TEST_FAILED),
            (true, reason::PODS_UNHEALTHY, event_reason::TEST_FAILED),
            (true, reason::MASTER_LOST, event_reason::MASTER_LOST),
            (
                true,
                reason::THRESHOLDS_BREACHED,
                event_reason::THRESHOLDS_BREACHED,
            ),
            (
                true,
                reason::RESULTS_UNAVAILABLE,
                event_reason::RESULTS_UNAVAILABLE,
            ),
        ] {
            let mut d = Draft::new(&prev, None, t(0));
            let completion = Completion {
                failed,
                reason: why,
                message: "m".into(),
            };
            test_completed(&mut d, Phase::Failed, Some(completion));
            let tc = cond(&d, ct::TEST_COMPLETED);
            assert_eq!((tc.status.as_str(), tc.reason.as_str()), ("True", why));
            assert_eq!(cond(&d, ct::READY).reason, reason::TEST_FINISHED);
            assert_eq!(
                cond(&d, ct::WORKERS_CONNECTED).reason,
                reason::TEST_FINISHED
            );
            assert_eq!(d.events.len(), 1);
            assert_eq!((d.events[0].warning, d.events[0].reason), (failed, event));
        }
    }
}
