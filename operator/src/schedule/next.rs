//! The instants a [`Schedule`] names in a time zone.
//!
//! A schedule names civil (wall-clock) times; the zone turns each into an
//! instant. The scheduled instants are, for every civil minute the schedule
//! matches, in order:
//!
//! - the minute's instant, when the wall clock shows that minute once;
//! - nothing, when the minute is skipped by a forward transition (spring
//!   forward): a daily `30 2 * * *` job does not run on the day Europe/Berlin
//!   goes from 02:00 to 03:00, and its next run is 02:30 the day after;
//! - the *first* of its two instants, when the minute is repeated by a
//!   backward transition (fall back): a daily `30 1 * * *` job in
//!   America/New_York runs once, at 01:30 EDT, not again at 01:30 EST; an
//!   hourly or `*/15` job likewise skips the repeated wall-clock hour.
//!
//! The spring-forward rule is robfig/cron v3's (`SpecSchedule.Next`, which
//! CronJob uses): it walks from the start instant by adding whole hours
//! (`t = t.Add(1 * time.Hour)`) and minutes (`t = t.Add(1 * time.Minute)`) to
//! an absolute time and re-reads the wall clock, so a skipped wall-clock hour
//! is never seen and never matched. The fall-back rule is *not* robfig's: the
//! same walk sees a repeated hour twice and runs a fixed-time job twice — its
//! own `spec_test.go` names the case "1am nightly job (runs twice)". Running
//! once, at the first occurrence, is what this module does instead. robfig's
//! quirks where midnight itself is skipped (its `time.Date` resets landing in
//! a gap) are not reproduced either: such a midnight is skipped like any
//! other missing minute.
//!
//! [`next_after`] searches at most [`SEARCH_YEARS`] calendar years past the
//! start, as robfig/cron does, and returns `None` beyond (`0 0 30 2 *`).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::Schedule;

/// How many years past the start year [`next_after`] searches, as robfig/cron.
pub const SEARCH_YEARS: i32 = 5;

/// The last year jiff represents.
const MAX_YEAR: i32 = 9999;

/// The first scheduled instant strictly after `instant`, in time zone `tz`
/// (see the module docs for DST), or `None` if there is none up to the end of
/// the [`SEARCH_YEARS`]th year after `instant`'s (civil) year.
pub fn next_after(schedule: &Schedule, tz: &TimeZone, instant: Timestamp) -> Option<Timestamp> {
    let year = i32::from(tz.to_datetime(instant).year());
    first_after(schedule, tz, instant, year.saturating_add(SEARCH_YEARS))
}

/// The scheduled instants in `(after, until]`, oldest first, at most `limit`
/// of them (each found by [`next_after`]).
pub fn times_between(
    schedule: &Schedule,
    tz: &TimeZone,
    after: Timestamp,
    until: Timestamp,
    limit: usize,
) -> Vec<Timestamp> {
    let mut times = Vec::new();
    let mut from = after;
    while times.len() < limit {
        match next_after(schedule, tz, from) {
            Some(t) if t <= until => {
                times.push(t);
                from = t;
            }
            _ => break,
        }
    }
    times
}

/// The latest scheduled instant in `(after, until]`, or `None` if there is
/// none. Not bounded by [`SEARCH_YEARS`], and quick however many instants
/// the span holds: a binary search over the span, each step one bounded
/// forward search.
pub fn latest_in(
    schedule: &Schedule,
    tz: &TimeZone,
    after: Timestamp,
    until: Timestamp,
) -> Option<Timestamp> {
    let mut best = first_in(schedule, tz, after, until)?;
    // Invariant: `best` is scheduled, and the latest lies in [best, hi]
    // (whole seconds: scheduled instants are whole minutes).
    let (mut lo, mut hi) = (best.as_second(), until.as_second());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Ok(probe) = Timestamp::from_second(mid) else {
            break;
        };
        match first_in(schedule, tz, probe, until) {
            Some(t) => {
                best = t;
                lo = t.as_second();
            }
            None => hi = mid,
        }
    }
    Some(best)
}

/// Whether `instant` is one of the schedule's instants in `tz`: a whole
/// minute the schedule matches, and the first instant showing that minute.
pub fn is_scheduled_at(schedule: &Schedule, tz: &TimeZone, instant: Timestamp) -> bool {
    let dt = tz.to_datetime(instant);
    schedule.matches(dt) && first_instant(tz, Civil::of(dt)) == Some(instant)
}

/// The first scheduled instant in `(after, until]`, searched exactly (no
/// year limit but `until`'s).
pub(crate) fn first_in(
    schedule: &Schedule,
    tz: &TimeZone,
    after: Timestamp,
    until: Timestamp,
) -> Option<Timestamp> {
    if until <= after {
        return None;
    }
    // A civil time never runs more than a day ahead of the instant it shows.
    let last_year = i32::from(tz.to_datetime(until).year()).saturating_add(1);
    first_after(schedule, tz, after, last_year).filter(|t| *t <= until)
}

/// The first scheduled instant after `instant` whose civil year is at most
/// `last_year`.
fn first_after(
    schedule: &Schedule,
    tz: &TimeZone,
    instant: Timestamp,
    last_year: i32,
) -> Option<Timestamp> {
    let last_year = last_year.min(MAX_YEAR);
    // Civil minutes up to the one showing at `instant` are first shown at or
    // before it (first occurrences grow with the civil time), so the search
    // starts at the next minute.
    let mut from = Civil::of(tz.to_datetime(instant)).next_minute();
    loop {
        let candidate = next_match(schedule, from, last_year)?;
        match first_instant(tz, candidate) {
            Some(t) if t > instant => return Some(t),
            // Skipped (a gap), or first shown before `instant` (we are in
            // the second pass of a fold).
            _ => from = candidate.next_minute(),
        }
    }
}

/// The first instant showing civil minute `civil` in `tz`: none in a gap,
/// the earlier of two in a fold.
fn first_instant(tz: &TimeZone, civil: Civil) -> Option<Timestamp> {
    let dt = civil.to_datetime()?;
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { .. } => None,
        AmbiguousOffset::Fold { before, after } => {
            let first = before.to_timestamp(dt).ok();
            let second = after.to_timestamp(dt).ok();
            match (first, second) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
    }
}

/// A civil minute (proleptic Gregorian), kept valid by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Civil {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
}

impl Civil {
    /// The minute `dt` falls in.
    fn of(dt: DateTime) -> Civil {
        let part = |v: i8| u8::try_from(v).unwrap_or(0);
        Civil {
            year: i32::from(dt.year()),
            month: part(dt.month()),
            day: part(dt.day()),
            hour: part(dt.hour()),
            minute: part(dt.minute()),
        }
    }

    fn to_datetime(self) -> Option<DateTime> {
        let part = |v: u8| i8::try_from(v).ok();
        DateTime::new(
            i16::try_from(self.year).ok()?,
            part(self.month)?,
            part(self.day)?,
            part(self.hour)?,
            part(self.minute)?,
            0,
            0,
        )
        .ok()
    }

    fn next_minute(self) -> Civil {
        if self.minute < 59 {
            Civil {
                minute: self.minute + 1,
                ..self
            }
        } else {
            self.next_hour()
        }
    }

    fn next_hour(self) -> Civil {
        if self.hour < 23 {
            Civil {
                hour: self.hour + 1,
                minute: 0,
                ..self
            }
        } else {
            self.next_day()
        }
    }

    fn next_day(self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil {
                day: self.day + 1,
                hour: 0,
                minute: 0,
                ..self
            }
        } else {
            self.next_month()
        }
    }

    fn next_month(self) -> Civil {
        if self.month < 12 {
            Civil::start_of(self.year, self.month + 1)
        } else {
            Civil::start_of(self.year.saturating_add(1), 1)
        }
    }

    fn start_of(year: i32, month: u8) -> Civil {
        Civil {
            year,
            month,
            day: 1,
            hour: 0,
            minute: 0,
        }
    }
}

/// The first civil minute `>= from` the schedule matches, in a year up to
/// `last_year`. Each step moves to the next candidate month, day, hour or
/// minute and starts over, so the search takes at most a few steps per day.
fn next_match(schedule: &Schedule, mut from: Civil, last_year: i32) -> Option<Civil> {
    loop {
        if from.year > last_year {
            return None;
        }
        match schedule.month_from(from.month) {
            None => {
                from = Civil::start_of(from.year.saturating_add(1), 1);
                continue;
            }
            Some(month) if month != from.month => {
                from = Civil::start_of(from.year, month);
            }
            Some(_) => {}
        }
        if !schedule.day_matches(from.day, weekday(from.year, from.month, from.day)) {
            from = from.next_day();
            continue;
        }
        match schedule.hour_from(from.hour) {
            None => {
                from = from.next_day();
                continue;
            }
            Some(hour) if hour != from.hour => {
                from = Civil {
                    hour,
                    minute: 0,
                    ..from
                };
            }
            Some(_) => {}
        }
        match schedule.minute_from(from.minute) {
            None => from = from.next_hour(),
            Some(minute) => return Some(Civil { minute, ..from }),
        }
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week, Sunday = 0 (days since 1970-01-01, a Thursday).
fn weekday(year: i32, month: u8, day: u8) -> u8 {
    // Howard Hinnant's days_from_civil.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // 1970-01-01 was a Thursday (4).
    u8::try_from((days + 4).rem_euclid(7)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn tz(name: &str) -> TimeZone {
        super::super::time_zone(Some(name)).unwrap()
    }

    fn sched(s: &str) -> Schedule {
        Schedule::parse(s).unwrap()
    }

    #[test]
    fn weekday_matches_jiff() {
        let mut date = jiff::civil::date(1899, 12, 25);
        for _ in 0..(366 * 5) {
            let expected = u8::try_from(date.weekday().to_sunday_zero_offset()).unwrap();
            let got = weekday(i32::from(date.year()), date.month() as u8, date.day() as u8);
            assert_eq!(got, expected, "{date}");
            date = date.tomorrow().unwrap();
        }
        for (y, m, d, w) in [
            (2000, 2, 29, 2),
            (2100, 3, 1, 1),
            (1600, 1, 1, 6),
            (-1, 12, 31, 5),
        ] {
            let expected = jiff::civil::date(y, m, d).weekday().to_sunday_zero_offset();
            assert_eq!(
                i8::try_from(weekday(i32::from(y), m as u8, d as u8)).unwrap(),
                expected
            );
            assert_eq!(weekday(i32::from(y), m as u8, d as u8), w);
        }
    }

    #[test]
    fn next_in_utc() {
        let utc = TimeZone::UTC;
        let s = sched("*/15 * * * *");
        assert_eq!(
            next_after(&s, &utc, ts("2024-01-01T00:00:00Z")),
            Some(ts("2024-01-01T00:15:00Z"))
        );
        assert_eq!(
            next_after(&s, &utc, ts("2024-01-01T00:14:59.999Z")),
            Some(ts("2024-01-01T00:15:00Z"))
        );
        assert_eq!(
            next_after(&s, &utc, ts("2024-12-31T23:59:00Z")),
            Some(ts("2025-01-01T00:00:00Z"))
        );
        assert_eq!(
            next_after(&sched("0 0 30 2 *"), &utc, ts("2024-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn search_years_bound() {
        let s = sched("0 0 29 2 *");
        // 2100 is not a leap year: from 2097 the next 29 February is in 2104,
        // past 2097 + 5.
        assert_eq!(
            next_after(&s, &TimeZone::UTC, ts("2097-03-01T00:00:00Z")),
            None
        );
        assert_eq!(
            next_after(&s, &TimeZone::UTC, ts("2095-03-01T00:00:00Z")),
            Some(ts("2096-02-29T00:00:00Z"))
        );
        // latest_in is not bounded.
        assert_eq!(
            latest_in(
                &s,
                &TimeZone::UTC,
                ts("2097-03-01T00:00:00Z"),
                ts("2105-01-01T00:00:00Z")
            ),
            Some(ts("2104-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn end_of_time() {
        let s = sched("* * * * *");
        assert_eq!(next_after(&s, &TimeZone::UTC, Timestamp::MAX), None);
        assert!(next_after(&s, &TimeZone::UTC, Timestamp::MIN).is_some());
    }

    #[test]
    fn fold_and_gap_in_new_york() {
        let ny = tz("America/New_York");
        let every15 = sched("*/15 * * * *");
        let between = |from: &str, to: &str| -> Vec<String> {
            times_between(&every15, &ny, ts(from), ts(to), 100)
                .iter()
                .map(Timestamp::to_string)
                .collect()
        };
        // Fall back 2024-11-03 02:00 EDT -> 01:00 EST: 01:00-01:45 EST are
        // repeats of wall times already run in EDT.
        assert_eq!(
            between("2024-11-03T04:50:00Z", "2024-11-03T07:20:00Z"),
            [
                "2024-11-03T05:00:00Z", // 01:00 EDT
                "2024-11-03T05:15:00Z",
                "2024-11-03T05:30:00Z",
                "2024-11-03T05:45:00Z", // 01:45 EDT
                "2024-11-03T07:00:00Z", // 02:00 EST
                "2024-11-03T07:15:00Z",
            ]
        );
        // Spring forward 2024-03-10 02:00 EST -> 03:00 EDT: 02:xx never happens.
        assert_eq!(
            between("2024-03-10T06:40:00Z", "2024-03-10T07:20:00Z"),
            [
                "2024-03-10T06:45:00Z", // 01:45 EST
                "2024-03-10T07:00:00Z", // 03:00 EDT
                "2024-03-10T07:15:00Z",
            ]
        );
    }

    #[test]
    fn scheduled_at() {
        let ny = tz("America/New_York");
        let s = sched("30 1 * * *");
        assert!(is_scheduled_at(&s, &ny, ts("2024-11-03T05:30:00Z")));
        assert!(!is_scheduled_at(&s, &ny, ts("2024-11-03T06:30:00Z")));
        assert!(!is_scheduled_at(&s, &ny, ts("2024-11-03T05:30:01Z")));
        assert!(!is_scheduled_at(&s, &ny, ts("2024-11-03T05:31:00Z")));
    }

    #[test]
    fn latest() {
        let utc = TimeZone::UTC;
        let s = sched("0 * * * *");
        assert_eq!(
            latest_in(
                &s,
                &utc,
                ts("2000-01-01T00:00:00Z"),
                ts("2024-06-01T12:34:56Z")
            ),
            Some(ts("2024-06-01T12:00:00Z"))
        );
        assert_eq!(
            latest_in(
                &s,
                &utc,
                ts("2024-06-01T12:00:00Z"),
                ts("2024-06-01T12:59:59Z")
            ),
            None
        );
        assert_eq!(
            latest_in(
                &s,
                &utc,
                ts("2024-06-01T11:59:59Z"),
                ts("2024-06-01T12:00:00Z")
            ),
            Some(ts("2024-06-01T12:00:00Z"))
        );
        assert_eq!(
            latest_in(
                &s,
                &utc,
                ts("2024-06-01T13:00:00Z"),
                ts("2024-06-01T12:00:00Z")
            ),
            None
        );
    }
}
