//! CronJob's missed-start rule, as its controller applies it
//! (`mostRecentScheduleTime` and `nextScheduleTime` in kubernetes
//! `pkg/controller/cronjob/utils.go`, v2 controller):
//!
//! - the window starts at the last schedule time, or at the creation time
//!   when nothing was scheduled yet (`since`); with
//!   `startingDeadlineSeconds`, at `now - deadline` if that is later
//!   ("controller is not going to schedule anything below this point");
//! - the time to run is the most recent scheduled time in `(start, now]`;
//!   older ones in the window are missed and never run;
//! - more than 100 scheduled times in the window is "too many missed start
//!   times" (CronJob's `TooManyMissedTimes` warning: "Set or decrease
//!   .spec.startingDeadlineSeconds or check clock skew"); the most recent one
//!   is still run;
//! - the next time to wake up is the first scheduled time after both `since`
//!   and `now` (as `nextScheduleTimeDuration`, which ignores the deadline).
//!
//! Two differences, both on the side of exactness: CronJob estimates the
//! number of missed times from the gap between the first two
//! (`(now - t1) / (t2 - t1) + 1`) and walks from that estimate to find the
//! most recent one, which miscounts — and can miss the most recent time
//! altogether — for irregular schedules such as `30 6-16/4 * * 1-5`; here
//! the count is exact (capped at [`MAX_MISSED`] + 1) and the most recent time
//! is found by [`latest_in`]. And the times the deadline cut off are reported
//! ([`MissedStarts::too_late`]), for a `MissSchedule`-like event.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::next::first_in;
use super::{Schedule, latest_in, next_after};

/// More missed start times than this is "too many" (CronJob's limit).
pub const MAX_MISSED: u32 = 100;

/// What [`missed_starts`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissedStarts {
    /// Where the window starts (exclusive): `since`, or `now -
    /// startingDeadlineSeconds` when later.
    pub window_start: Timestamp,
    /// The scheduled time to start a test for now: the most recent one in
    /// `(window_start, now]`, or `None` if nothing is due.
    pub to_run: Option<Timestamp>,
    /// How many scheduled times lie in `(window_start, now]`, the one to run
    /// included: 0 (nothing due), 1 (just the one to run: CronJob's "none
    /// missed"), up to [`MAX_MISSED`]; [`MAX_MISSED`] + 1 stands for "more".
    pub missed: u32,
    /// The most recent scheduled time in `(since, window_start]`: one the
    /// deadline made too late to start, if any.
    pub too_late: Option<Timestamp>,
    /// The first scheduled time after `since` and `now`: when to look again
    /// (`None` if none within [`super::SEARCH_YEARS`]).
    pub next: Option<Timestamp>,
}

impl MissedStarts {
    /// More than [`MAX_MISSED`] start times were missed (CronJob's
    /// `TooManyMissedTimes`).
    pub fn too_many(&self) -> bool {
        self.missed > MAX_MISSED
    }
}

/// Applies CronJob's missed-start rule (see the module docs). `since` is the
/// last schedule time, or the schedule's creation time if it never ran;
/// `starting_deadline_seconds` is `spec.startingDeadlineSeconds`.
pub fn missed_starts(
    schedule: &Schedule,
    tz: &TimeZone,
    since: Timestamp,
    now: Timestamp,
    starting_deadline_seconds: Option<u64>,
) -> MissedStarts {
    let deadline_start = starting_deadline_seconds
        .and_then(|secs| i64::try_from(secs).ok())
        .and_then(|secs| now.checked_sub(SignedDuration::from_secs(secs)).ok());
    let window_start = match deadline_start {
        Some(start) if start > since => start,
        _ => since,
    };

    let mut missed = 0;
    let mut last = None;
    let mut from = window_start;
    while missed <= MAX_MISSED {
        let Some(t) = first_in(schedule, tz, from, now) else {
            break;
        };
        missed += 1;
        last = Some(t);
        from = t;
    }
    let to_run = if missed > MAX_MISSED {
        latest_in(schedule, tz, from, now).or(last)
    } else {
        last
    };

    let too_late = if window_start > since {
        latest_in(schedule, tz, since, window_start)
    } else {
        None
    };

    MissedStarts {
        window_start,
        to_run,
        missed,
        too_late,
        next: next_after(schedule, tz, since.max(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn hourly() {
        let s = Schedule::parse("0 * * * *").unwrap();
        let utc = TimeZone::UTC;
        let got = missed_starts(
            &s,
            &utc,
            ts("2024-01-01T10:00:00Z"),
            ts("2024-01-01T10:30:00Z"),
            None,
        );
        assert_eq!(got.to_run, None);
        assert_eq!(got.missed, 0);
        assert_eq!(got.next, Some(ts("2024-01-01T11:00:00Z")));

        let got = missed_starts(
            &s,
            &utc,
            ts("2024-01-01T10:00:00Z"),
            ts("2024-01-01T13:30:00Z"),
            None,
        );
        assert_eq!(got.to_run, Some(ts("2024-01-01T13:00:00Z")));
        assert_eq!(got.missed, 3);
        assert!(!got.too_many());

        // Exactly at the scheduled time: due.
        let got = missed_starts(
            &s,
            &utc,
            ts("2024-01-01T10:00:00Z"),
            ts("2024-01-01T11:00:00Z"),
            Some(0),
        );
        assert_eq!(got.to_run, None, "a zero deadline leaves an empty window");
        assert_eq!(got.too_late, Some(ts("2024-01-01T11:00:00Z")));
    }

    #[test]
    fn capped_count() {
        let s = Schedule::parse("* * * * *").unwrap();
        let got = missed_starts(
            &s,
            &TimeZone::UTC,
            ts("2000-01-01T00:00:00Z"),
            ts("2024-01-01T00:00:30Z"),
            None,
        );
        assert_eq!(got.missed, MAX_MISSED + 1);
        assert!(got.too_many());
        assert_eq!(got.to_run, Some(ts("2024-01-01T00:00:00Z")));
    }
}
