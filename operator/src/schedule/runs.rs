//! The LocustTests a `LocustSchedule` creates, as pure functions: their names
//! (deterministic from the scheduled time, so a time is never run twice under
//! two names), the labels and annotation linking them to their schedule, and
//! the whole object ([`test_for`], [`next_test`]).
//!
//! Names follow CronJob's `<cronjob>-<minutes since the epoch>`:
//! [`test_name`]. A schedule's name is bounded
//! ([`MAX_SCHEDULE_NAME_LENGTH`]) so that every such name is a valid
//! LocustTest name ([`MAX_TEST_NAME_LENGTH`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::{Schedule, ScheduleError, Timestamp, next_after, time_zone};
use crate::api::schedule::LocustSchedule;
use crate::api::v2::LocustTest;
use crate::validation::rules::MAX_TEST_NAME_LENGTH;

/// Digits of the minutes since the epoch in [`test_name`]: eight for every
/// time from 1989-01-05 (10^7 minutes) to 2160-02-18 (10^8 minutes).
pub const SCHEDULED_MINUTES_DIGITS: usize = 8;

/// Longest accepted `metadata.name` of a LocustSchedule: its tests are named
/// `<schedule>-<minutes>` ([`test_name`]), which must be a valid LocustTest
/// name. 56 - 1 - 8 = 47.
pub const MAX_SCHEDULE_NAME_LENGTH: usize = MAX_TEST_NAME_LENGTH - 1 - SCHEDULED_MINUTES_DIGITS;

/// Label on every test a schedule creates: the schedule's name.
pub const SCHEDULE_LABEL: &str = "locust.io/schedule";

/// Annotation on every test a schedule creates: the time it was scheduled
/// for (RFC 3339, UTC), as CronJob's `batch.kubernetes.io/cronjob-scheduled-timestamp`.
pub const SCHEDULED_TIME_ANNOTATION: &str = "locust.io/scheduled-time";

/// Annotation on a schedule that starts one test now, once per distinct
/// value (a token: any string, e.g. a CI run id or a time); the schedule's
/// `status.lastRunNowToken` records the last one handled.
pub const RUN_NOW_ANNOTATION: &str = "locust.io/run-now";

/// Name of the test started on demand for run-now `token`:
/// `<schedule_name>-m<7 hex digits>` (a stable FNV-1a of the token), as long
/// as a scheduled test's name ([`test_name`]: eight digits) and never equal
/// to one (the `m`).
pub fn run_now_test_name(schedule_name: &str, token: &str) -> String {
    let hash = crate::resources::names::fnv1a_32(token.as_bytes()) & 0x0fff_ffff;
    format!("{schedule_name}-m{hash:07x}")
}

/// The LocustTest `schedule` starts on demand at `now` for run-now `token`:
/// [`test_for`] at `now`, named [`run_now_test_name`], with the token in
/// [`RUN_NOW_ANNOTATION`].
pub fn run_now_test_for(
    schedule: &LocustSchedule,
    token: &str,
    now: Timestamp,
) -> Result<LocustTest, RunError> {
    let mut test = test_for(schedule, now)?;
    let name = schedule.metadata.name.as_deref().unwrap_or_default();
    test.metadata.name = Some(run_now_test_name(name, token));
    test.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(RUN_NOW_ANNOTATION.to_owned(), token.to_owned());
    Ok(test)
}

/// Name of the test `schedule_name` creates for the time `scheduled`:
/// `<schedule_name>-<whole minutes since the epoch>`, as CronJob names its
/// Jobs. The same inputs always give the same name, and two times in
/// different minutes never give the same one.
pub fn test_name(schedule_name: &str, scheduled: Timestamp) -> String {
    format!("{schedule_name}-{}", scheduled.as_second().div_euclid(60))
}

/// The scheduled time (a whole minute) that [`test_name`] wrote into
/// `test_name`, if it is the name of a test of `schedule_name`.
pub fn scheduled_time_of(schedule_name: &str, test_name: &str) -> Option<Timestamp> {
    let minutes = test_name
        .strip_prefix(schedule_name)?
        .strip_prefix('-')
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))?;
    let minutes: i64 = minutes.parse().ok()?;
    Timestamp::from_second(minutes.checked_mul(60)?).ok()
}

/// Why a schedule's test cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// `spec.schedule` or `spec.timeZone` cannot be used.
    #[error("{field}: {source}")]
    Invalid {
        /// The offending field, `spec.schedule` or `spec.timeZone`.
        field: &'static str,
        /// What is wrong with it.
        source: ScheduleError,
    },
    /// The schedule names no time in the searched years (e.g. `0 0 30 2 *`).
    #[error(
        "spec.schedule {schedule:?} names no time in the next {} years: no test would ever be created",
        super::SEARCH_YEARS
    )]
    NeverDue {
        /// The schedule as written.
        schedule: String,
    },
    /// The schedule has no name, namespace or uid to derive the test's from.
    #[error("the schedule has no metadata.{field}")]
    MissingMetadata {
        /// The missing field.
        field: &'static str,
    },
}

impl RunError {
    /// CamelCase reason, for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Invalid { source, .. } => source.reason(),
            RunError::NeverDue { .. } => "NeverDue",
            RunError::MissingMetadata { .. } => "MissingMetadata",
        }
    }
}

/// The parsed `spec.schedule` and `spec.timeZone` of `schedule`.
pub fn schedule_of(schedule: &LocustSchedule) -> Result<(Schedule, super::TimeZone), RunError> {
    let spec = &schedule.spec;
    let cron = Schedule::parse(&spec.schedule).map_err(|source| RunError::Invalid {
        field: "spec.schedule",
        source,
    })?;
    let tz = time_zone(spec.time_zone.as_deref()).map_err(|source| RunError::Invalid {
        field: "spec.timeZone",
        source,
    })?;
    Ok((cron, tz))
}

/// The first time after `now` at which `schedule` is due.
pub fn next_time(schedule: &LocustSchedule, now: Timestamp) -> Result<Timestamp, RunError> {
    let (cron, tz) = schedule_of(schedule)?;
    next_after(&cron, &tz, now).ok_or_else(|| RunError::NeverDue {
        schedule: schedule.spec.schedule.clone(),
    })
}

/// The LocustTest `schedule` creates for the time `scheduled`: named
/// [`test_name`], in the schedule's namespace, with the template's labels
/// and annotations plus [`SCHEDULE_LABEL`] and [`SCHEDULED_TIME_ANNOTATION`]
/// (which win over the template's), the template's spec, and a controller
/// owner reference to the schedule (deleting the schedule deletes its tests).
pub fn test_for(schedule: &LocustSchedule, scheduled: Timestamp) -> Result<LocustTest, RunError> {
    let meta = &schedule.metadata;
    let present = |v: &Option<String>, field: &'static str| {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or(RunError::MissingMetadata { field })
    };
    let name = present(&meta.name, "name")?;
    let namespace = present(&meta.namespace, "namespace")?;
    present(&meta.uid, "uid")?;
    let mut owner = schedule
        .controller_owner_ref(&())
        .ok_or(RunError::MissingMetadata { field: "uid" })?;
    // As on the children of a test: the schedule is deleted after its tests
    // when deleted in the foreground.
    owner.block_owner_deletion = Some(true);
    let template = &schedule.spec.template;
    let mut labels = template.metadata.labels.clone();
    labels.insert(SCHEDULE_LABEL.to_owned(), name.clone());
    let mut annotations = template.metadata.annotations.clone();
    annotations.insert(
        SCHEDULED_TIME_ANNOTATION.to_owned(),
        scheduled_time_value(scheduled),
    );
    let metadata = ObjectMeta {
        name: Some(test_name(&name, scheduled)),
        namespace: Some(namespace),
        labels: Some(labels),
        annotations: Some(annotations),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    Ok(LocustTest {
        metadata,
        spec: template.spec.clone(),
        status: None,
    })
}

/// The LocustTest `schedule` creates next after `now` ([`next_time`], [`test_for`]).
pub fn next_test(schedule: &LocustSchedule, now: Timestamp) -> Result<LocustTest, RunError> {
    test_for(schedule, next_time(schedule, now)?)
}

/// [`SCHEDULED_TIME_ANNOTATION`]'s value: RFC 3339 in UTC, whole seconds.
fn scheduled_time_value(scheduled: Timestamp) -> String {
    let seconds = Timestamp::from_second(scheduled.as_second()).unwrap_or(scheduled);
    seconds.to_string()
}

/// The labels selecting every test of the schedule named `schedule_name`.
pub fn schedule_selector(schedule_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(SCHEDULE_LABEL.to_owned(), schedule_name.to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn test_names_are_the_minutes_since_the_epoch() {
        let t = at("2026-03-01T02:30:00Z");
        assert_eq!(test_name("nightly", t), "nightly-29538870");
        // Seconds within the minute do not change the name.
        assert_eq!(
            test_name("nightly", at("2026-03-01T02:30:59Z")),
            "nightly-29538870"
        );
        assert_eq!(
            test_name("nightly", at("2026-03-01T02:31:00Z")),
            "nightly-29538871"
        );
        assert_eq!(scheduled_time_of("nightly", "nightly-29538870"), Some(t));
        assert_eq!(scheduled_time_of("nightly", "nightly-x"), None);
        assert_eq!(scheduled_time_of("nightly", "nightly-"), None);
        assert_eq!(scheduled_time_of("night", "nightly-29538870"), None);
    }

    #[test]
    fn the_digits_bound_holds_from_1989_to_2160() {
        let first = Timestamp::from_second(10_000_000 * 60).unwrap();
        let last = Timestamp::from_second(100_000_000 * 60 - 1).unwrap();
        assert_eq!(first.to_string(), "1989-01-05T10:40:00Z");
        assert_eq!(last.to_string(), "2160-02-18T10:39:59Z");
        for t in [first, last] {
            let digits = test_name("", t).len() - 1;
            assert_eq!(digits, SCHEDULED_MINUTES_DIGITS);
        }
        assert_eq!(MAX_SCHEDULE_NAME_LENGTH, 47);
    }

    #[test]
    fn run_now_names_are_stable_and_never_scheduled_names() {
        let a = run_now_test_name("nightly", "ci-1234");
        assert_eq!(a, run_now_test_name("nightly", "ci-1234"));
        assert_ne!(a, run_now_test_name("nightly", "ci-1235"));
        assert_eq!(
            a.len(),
            test_name("nightly", at("2026-03-01T02:30:00Z")).len()
        );
        assert!(a.starts_with("nightly-m"));
        assert_eq!(scheduled_time_of("nightly", &a), None);
        let long = "s".repeat(MAX_SCHEDULE_NAME_LENGTH);
        assert_eq!(run_now_test_name(&long, "x").len(), MAX_TEST_NAME_LENGTH);
    }

    #[test]
    fn the_annotation_is_rfc3339_in_whole_seconds() {
        let t = at("2026-03-01T02:30:00.250Z");
        assert_eq!(scheduled_time_value(t), "2026-03-01T02:30:00Z");
    }
}
