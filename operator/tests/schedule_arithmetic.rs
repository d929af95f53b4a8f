//! The schedule arithmetic behind `LocustSchedule` (issue #16): the cron
//! parser, the scheduled instants in IANA time zones across DST changes, and
//! CronJob's missed-start rule, as tables; then properties:
//!
//! - against a reference, the `croner` crate (Vixie-cron semantics), in UTC:
//!   random valid five-field expressions and instants give the same next
//!   five times. croner ORs the two day fields when both are restricted,
//!   like robfig/cron, but calls a field unrestricted only when it is exactly
//!   `*` (or `?`), where robfig/cron (and this parser) also count an item
//!   `*` or `*/1` inside a list (`1,*`, `*/1`). The generator leaves those
//!   forms out of the day fields; the tables test them. croner 4 also wants
//!   `a/n` spelled `a-<last>/n`, which the generator does for it;
//! - `next_after(t)` is after `t`, is a scheduled instant, and no scheduled
//!   minute lies between (checked minute by minute over spans up to a day):
//!   for any expression in UTC, and for frequent ones in nine zones (DST by
//!   an hour, by 30 minutes, at midnight; a skipped day; none) within six
//!   hours of their transitions from 2010 to 2030;
//! - there too, `latest_in` and `missed_starts` agree with a walk of
//!   `times_between` over their window;
//! - the normalized expression parses back to the same schedule; no input
//!   makes the parser panic.
//!
//! Each property runs [`CASES`] cases (`PROPTEST_CASES` overrides it).

use std::str::FromStr;

use croner::Cron;
use locust_operator::schedule::{
    CronField, MAX_MISSED, Schedule, ScheduleError, TimeZone, Timestamp, is_scheduled_at,
    latest_in, missed_starts, next_after, time_zone, times_between,
};
use proptest::prelude::*;

/// Cases per property.
const CASES: u32 = 1024;

#[path = "support/proptest_config.rs"]
mod proptest_config;
use proptest_config::config;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tz(name: &str) -> TimeZone {
    time_zone(Some(name)).unwrap()
}

/// `next` (what `next_after(start)` gave) is after `start` and `scheduled`,
/// and no minute strictly between them is (at most a day of them checked).
fn first_scheduled_minute(
    start: Timestamp,
    next: Timestamp,
    scheduled: impl Fn(Timestamp) -> bool,
) -> Result<(), String> {
    if next <= start || !scheduled(next) {
        return Err(format!(
            "after {start}: {next} is not a later scheduled minute"
        ));
    }
    let first_minute = (start.as_second().div_euclid(60) + 1) * 60;
    let end = next.as_second().min(first_minute + 86_400);
    for m in (first_minute..end).step_by(60) {
        let at = Timestamp::from_second(m).map_err(|e| e.to_string())?;
        if scheduled(at) {
            return Err(format!(
                "after {start}: {at} is scheduled, next_after gave {next}"
            ));
        }
    }
    Ok(())
}

fn sched(expr: &str) -> Schedule {
    Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Asserts each row, written `expression | zone | start | next instants…`.
fn check_table(rows: &[&str]) {
    for row in rows {
        let [expr, zone, after, want] = cells(row);
        let want: Vec<Timestamp> = want.split_whitespace().map(ts).collect();
        let got = times_between(
            &sched(expr),
            &tz(zone),
            ts(after),
            Timestamp::MAX,
            want.len(),
        );
        assert_eq!(got, want, "{row}");
    }
}

/// The `|`-separated cells of a table row.
fn cells<const N: usize>(row: &str) -> [&str; N] {
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    cells
        .try_into()
        .unwrap_or_else(|c: Vec<&str>| panic!("{row}: {} cells, wanted {N}", c.len()))
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

#[test]
fn every_macro() {
    // 2024-02-27 is a Tuesday in a leap year.
    check_table(&[
        "@hourly   | UTC | 2024-02-27T12:34:00Z | 2024-02-27T13:00:00Z 2024-02-27T14:00:00Z",
        "@daily    | UTC | 2024-02-27T12:34:00Z | 2024-02-28T00:00:00Z 2024-02-29T00:00:00Z",
        "@midnight | UTC | 2024-02-27T12:34:00Z | 2024-02-28T00:00:00Z 2024-02-29T00:00:00Z",
        "@weekly   | UTC | 2024-02-27T12:34:00Z | 2024-03-03T00:00:00Z 2024-03-10T00:00:00Z",
        "@monthly  | UTC | 2024-02-27T12:34:00Z | 2024-03-01T00:00:00Z 2024-04-01T00:00:00Z",
        "@yearly   | UTC | 2024-02-27T12:34:00Z | 2025-01-01T00:00:00Z 2026-01-01T00:00:00Z",
        "@annually | UTC | 2024-02-27T12:34:00Z | 2025-01-01T00:00:00Z 2026-01-01T00:00:00Z",
        // In a zone: local midnight, local hours.
        "@daily  | Europe/Berlin | 2024-02-27T12:34:00Z | 2024-02-28T00:00:00+01:00",
        "@hourly | Asia/Kolkata  | 2024-02-27T12:34:00Z | 2024-02-27T19:00:00+05:30",
    ]);
    // Each macro equals its five fields: cron.rs's `macros` unit test.
}

#[test]
fn lists_ranges_steps() {
    // 2024-01-01 is a Monday.
    check_table(&[
        "5,10,50 * * * *  | UTC | 2024-01-01T00:00:00Z | 2024-01-01T00:05:00Z 2024-01-01T00:10:00Z 2024-01-01T00:50:00Z 2024-01-01T01:05:00Z",
        "10-12 * * * *    | UTC | 2024-01-01T00:00:00Z | 2024-01-01T00:10:00Z 2024-01-01T00:11:00Z 2024-01-01T00:12:00Z 2024-01-01T01:10:00Z",
        "*/20 * * * *     | UTC | 2024-01-01T00:00:00Z | 2024-01-01T00:20:00Z 2024-01-01T00:40:00Z 2024-01-01T01:00:00Z",
        "10-40/15 * * * * | UTC | 2024-01-01T00:00:00Z | 2024-01-01T00:10:00Z 2024-01-01T00:25:00Z 2024-01-01T00:40:00Z 2024-01-01T01:10:00Z",
        "45/10 * * * *    | UTC | 2024-01-01T00:00:00Z | 2024-01-01T00:45:00Z 2024-01-01T00:55:00Z 2024-01-01T01:45:00Z",
        "0 */8 * * *      | UTC | 2024-01-01T00:00:00Z | 2024-01-01T08:00:00Z 2024-01-01T16:00:00Z 2024-01-02T00:00:00Z",
        "0 9-17/4 * * *   | UTC | 2024-01-01T00:00:00Z | 2024-01-01T09:00:00Z 2024-01-01T13:00:00Z 2024-01-01T17:00:00Z 2024-01-02T09:00:00Z",
        "0 0 1-3,15 * *   | UTC | 2024-01-01T00:00:00Z | 2024-01-02T00:00:00Z 2024-01-03T00:00:00Z 2024-01-15T00:00:00Z 2024-02-01T00:00:00Z",
        "0 0 1 */4 *      | UTC | 2024-01-01T00:00:00Z | 2024-05-01T00:00:00Z 2024-09-01T00:00:00Z 2025-01-01T00:00:00Z",
        "0 12 * * 1-5     | UTC | 2024-01-01T00:00:00Z | 2024-01-01T12:00:00Z 2024-01-02T12:00:00Z 2024-01-03T12:00:00Z 2024-01-04T12:00:00Z 2024-01-05T12:00:00Z 2024-01-08T12:00:00Z",
        "30 6 * * 0,6     | UTC | 2024-01-01T00:00:00Z | 2024-01-06T06:30:00Z 2024-01-07T06:30:00Z 2024-01-13T06:30:00Z",
        "59 23 31 12 *    | UTC | 2024-01-01T00:00:00Z | 2024-12-31T23:59:00Z 2025-12-31T23:59:00Z",
        "* * * * *        | UTC | 2024-01-01T00:00:59.999999999Z | 2024-01-01T00:01:00Z 2024-01-01T00:02:00Z",
        // Strictly after: a start on a scheduled minute is not returned.
        "0 0 * * *        | UTC | 2024-01-01T00:00:00Z | 2024-01-02T00:00:00Z",
        // Steps larger than the field: just the start.
        "*/90 */30 * * *  | UTC | 2024-01-01T00:00:00Z | 2024-01-02T00:00:00Z",
    ]);
}

#[test]
fn day_of_month_or_day_of_week() {
    // 2024-09-01 is a Sunday; 13 September is a Friday.
    check_table(&[
        // Both restricted: either.
        "0 0 13 * 5 | UTC | 2024-09-01T00:00:00Z | 2024-09-06T00:00:00Z 2024-09-13T00:00:00Z 2024-09-20T00:00:00Z 2024-09-27T00:00:00Z 2024-10-04T00:00:00Z 2024-10-11T00:00:00Z 2024-10-13T00:00:00Z 2024-10-18T00:00:00Z",
        // `*/10` restricts the field (robfig clears its star bit for a step).
        "0 0 */10 * 1 | UTC | 2024-09-01T00:00:00Z | 2024-09-02T00:00:00Z 2024-09-09T00:00:00Z 2024-09-11T00:00:00Z 2024-09-16T00:00:00Z 2024-09-21T00:00:00Z 2024-09-23T00:00:00Z 2024-09-30T00:00:00Z 2024-10-01T00:00:00Z",
        // A full but restricted field still ORs: every day.
        "0 0 1-31 * 1 | UTC | 2024-09-01T00:00:00Z | 2024-09-02T00:00:00Z 2024-09-03T00:00:00Z 2024-09-04T00:00:00Z",
        // One unrestricted: both.
        "0 0 13 * *  | UTC | 2024-09-01T00:00:00Z | 2024-09-13T00:00:00Z 2024-10-13T00:00:00Z",
        "0 0 * * 5   | UTC | 2024-09-01T00:00:00Z | 2024-09-06T00:00:00Z 2024-09-13T00:00:00Z 2024-09-20T00:00:00Z",
        "0 0 ? * FRI | UTC | 2024-09-01T00:00:00Z | 2024-09-06T00:00:00Z 2024-09-13T00:00:00Z",
        "0 0 13 * ?  | UTC | 2024-09-01T00:00:00Z | 2024-09-13T00:00:00Z 2024-10-13T00:00:00Z",
        // An item `*` or `*/1` in a list makes the field unrestricted
        // (robfig's star bit; croner would OR these).
        "0 0 1,* * 1  | UTC | 2024-09-01T00:00:00Z | 2024-09-02T00:00:00Z 2024-09-09T00:00:00Z",
        "0 0 */1 * 1  | UTC | 2024-09-01T00:00:00Z | 2024-09-02T00:00:00Z 2024-09-09T00:00:00Z",
        "0 0 13 * */1 | UTC | 2024-09-01T00:00:00Z | 2024-09-13T00:00:00Z 2024-10-13T00:00:00Z",
        "0 0 13 * 5,* | UTC | 2024-09-01T00:00:00Z | 2024-09-13T00:00:00Z 2024-10-13T00:00:00Z",
        // Friday the 13th needs an AND the syntax cannot say: OR gives more.
        "0 0 13 9 5 | UTC | 2024-09-01T00:00:00Z | 2024-09-06T00:00:00Z 2024-09-13T00:00:00Z 2024-09-20T00:00:00Z 2024-09-27T00:00:00Z 2025-09-05T00:00:00Z",
    ]);
    assert!(sched("0 0 13 * 5").days_either());
    assert!(!sched("0 0 13 * *").days_either());
    assert!(!sched("0 0 1,* * 1").days_either());
    assert!(sched("0 0 */2 * 1").days_either());
}

#[test]
fn month_and_day_names() {
    check_table(&[
        "0 0 1 jan,Jul *     | UTC | 2024-01-01T00:00:00Z | 2024-07-01T00:00:00Z 2025-01-01T00:00:00Z",
        "0 0 * FEB sun       | UTC | 2024-01-01T00:00:00Z | 2024-02-04T00:00:00Z 2024-02-11T00:00:00Z 2024-02-18T00:00:00Z 2024-02-25T00:00:00Z 2025-02-02T00:00:00Z",
        "0 8 * * MON-wed     | UTC | 2024-01-01T00:00:00Z | 2024-01-01T08:00:00Z 2024-01-02T08:00:00Z 2024-01-03T08:00:00Z 2024-01-08T08:00:00Z",
        "0 0 1 jan-DEC/3 *   | UTC | 2024-01-01T00:00:00Z | 2024-04-01T00:00:00Z 2024-07-01T00:00:00Z 2024-10-01T00:00:00Z 2025-01-01T00:00:00Z",
        "0 0 * * fri-SAT     | UTC | 2024-01-01T00:00:00Z | 2024-01-05T00:00:00Z 2024-01-06T00:00:00Z 2024-01-12T00:00:00Z",
    ]);
    // 0, 7 and SUN are all Sunday; names are case-insensitive.
    for same in ["0 8 * * 7", "0 8 * * sun", "0 8 * * SUN", "0 8 * * Sun"] {
        assert_eq!(sched(same), sched("0 8 * * 0"), "{same}");
    }
    for same in ["0 0 1 dec *", "0 0 1 DEC *", "0 0 1 Dec *"] {
        assert_eq!(sched(same), sched("0 0 1 12 *"), "{same}");
    }
    assert_eq!(sched("0 0 * * 5-7"), sched("0 0 * * 0,5,6"));
}

#[test]
fn dst_spring_forward_skips_the_missing_time() {
    check_table(&[
        // Europe/Berlin, 2024-03-31 02:00 CET -> 03:00 CEST: no 02:30 that day.
        "30 2 * * *   | Europe/Berlin | 2024-03-29T00:00:00Z      | 2024-03-29T02:30:00+01:00 2024-03-30T02:30:00+01:00 2024-04-01T02:30:00+02:00",
        // Times around the gap are unaffected.
        "30 1,3 * * * | Europe/Berlin | 2024-03-31T00:00:00+01:00 | 2024-03-31T01:30:00+01:00 2024-03-31T03:30:00+02:00",
        "*/30 * * * * | Europe/Berlin | 2024-03-31T01:00:00+01:00 | 2024-03-31T01:30:00+01:00 2024-03-31T03:00:00+02:00 2024-03-31T03:30:00+02:00",
        // America/New_York, 2024-03-10 02:00 EST -> 03:00 EDT.
        "30 2 * * * | America/New_York | 2024-03-09T00:00:00-05:00 | 2024-03-09T02:30:00-05:00 2024-03-11T02:30:00-04:00",
        "0 * * * *  | America/New_York | 2024-03-10T00:30:00-05:00 | 2024-03-10T01:00:00-05:00 2024-03-10T03:00:00-04:00 2024-03-10T04:00:00-04:00",
        // Australia/Lord_Howe moves by 30 minutes: 2024-10-06 02:00 +10:30 -> 02:30 +11.
        "15 2 * * *   | Australia/Lord_Howe | 2024-10-05T00:00:00+10:30 | 2024-10-05T02:15:00+10:30 2024-10-07T02:15:00+11:00",
        "45 2 * * *   | Australia/Lord_Howe | 2024-10-05T12:00:00+10:30 | 2024-10-06T02:45:00+11:00",
        "*/15 * * * * | Australia/Lord_Howe | 2024-10-06T01:40:00+10:30 | 2024-10-06T01:45:00+10:30 2024-10-06T02:30:00+11:00 2024-10-06T02:45:00+11:00",
        // A midnight that does not exist (America/Santiago, 2024-09-08
        // 00:00 -04 -> 01:00 -03): a daily midnight job skips that day, a
        // weekly (Sunday) one that week.
        "0 0 * * * | America/Santiago | 2024-09-07T12:00:00-04:00 | 2024-09-09T00:00:00-03:00",
        "@weekly   | America/Santiago | 2024-09-01T12:00:00-04:00 | 2024-09-15T00:00:00-03:00",
    ]);
}

#[test]
fn dst_fall_back_runs_once() {
    check_table(&[
        // Europe/Berlin, 2024-10-27 03:00 CEST -> 02:00 CET: 02:30 twice, run once (the first).
        "30 2 * * * | Europe/Berlin | 2024-10-26T00:00:00Z | 2024-10-26T02:30:00+02:00 2024-10-27T02:30:00+02:00 2024-10-28T02:30:00+01:00",
        // America/New_York, 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 twice, run once.
        "30 1 * * * | America/New_York | 2024-11-02T00:00:00-04:00 | 2024-11-02T01:30:00-04:00 2024-11-03T01:30:00-04:00 2024-11-04T01:30:00-05:00",
        // Hourly: the repeated hour is not run again.
        "0 * * * *  | America/New_York | 2024-11-03T00:30:00-04:00 | 2024-11-03T01:00:00-04:00 2024-11-03T02:00:00-05:00",
        // Australia/Lord_Howe, 2024-04-07 02:00 +11 -> 01:30 +10:30: 01:30-02:00 twice.
        "45 1 * * *   | Australia/Lord_Howe | 2024-04-06T00:00:00+11:00 | 2024-04-06T01:45:00+11:00 2024-04-07T01:45:00+11:00 2024-04-08T01:45:00+10:30",
        "*/15 * * * * | Australia/Lord_Howe | 2024-04-07T01:10:00+11:00 | 2024-04-07T01:15:00+11:00 2024-04-07T01:30:00+11:00 2024-04-07T01:45:00+11:00 2024-04-07T02:00:00+10:30",
        // Starting inside the second pass of the fold: the repeats are not due.
        "30 1 * * *   | America/New_York | 2024-11-03T01:10:00-05:00 | 2024-11-04T01:30:00-05:00",
        "*/15 * * * * | America/New_York | 2024-11-03T01:10:00-05:00 | 2024-11-03T02:00:00-05:00",
    ]);
    // The instant of the repeat is not a scheduled one.
    let ny = tz("America/New_York");
    let s = sched("30 1 * * *");
    assert!(is_scheduled_at(&s, &ny, ts("2024-11-03T01:30:00-04:00")));
    assert!(!is_scheduled_at(&s, &ny, ts("2024-11-03T01:30:00-05:00")));
}

#[test]
fn leap_day_and_short_months() {
    check_table(&[
        "0 0 29 2 * | UTC | 2023-01-01T00:00:00Z | 2024-02-29T00:00:00Z 2028-02-29T00:00:00Z 2032-02-29T00:00:00Z",
        "0 0 29 2 * | UTC | 2095-01-01T00:00:00Z | 2096-02-29T00:00:00Z",
        "0 0 31 * * | UTC | 2024-01-01T00:00:00Z | 2024-01-31T00:00:00Z 2024-03-31T00:00:00Z 2024-05-31T00:00:00Z 2024-07-31T00:00:00Z 2024-08-31T00:00:00Z 2024-10-31T00:00:00Z 2024-12-31T00:00:00Z 2025-01-31T00:00:00Z",
        "0 0 30 * * | UTC | 2024-01-31T00:00:00Z | 2024-03-30T00:00:00Z",
        "0 0 29 2 * | Europe/Berlin | 2024-01-01T00:00:00Z | 2024-02-29T00:00:00+01:00",
    ]);
    let utc = TimeZone::UTC;
    // 2100 is not a leap year: after 2096 comes 2104, past robfig/cron's
    // five-year search from 2097.
    assert_eq!(
        next_after(&sched("0 0 29 2 *"), &utc, ts("2097-01-01T00:00:00Z")),
        None
    );
    // Never: 30 February, 31 April.
    for never in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"] {
        let s = sched(never);
        assert!(!s.is_satisfiable(), "{never}");
        assert_eq!(
            next_after(&s, &utc, ts("2024-01-01T00:00:00Z")),
            None,
            "{never}"
        );
    }
    // With a restricted day of week, 30 February ORs with Mondays.
    assert_eq!(
        next_after(&sched("0 0 30 2 1"), &utc, ts("2024-01-01T00:00:00Z")),
        Some(ts("2024-02-05T00:00:00Z"))
    );
}

#[test]
fn time_zone_names() {
    assert_eq!(time_zone(None).unwrap(), TimeZone::UTC);
    assert_eq!(
        time_zone(Some("Mars/Base")).unwrap_err().to_string(),
        "unknown time zone \"Mars/Base\""
    );
    let err = time_zone(Some("america/new_york")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown time zone \"america/new_york\" (did you mean \"America/New_York\"?)"
    );
    assert_eq!(err.reason(), "UnknownTimeZone");
    assert_eq!(
        time_zone(Some("Local")).unwrap_err().reason(),
        "LocalTimeZone"
    );
}

#[test]
fn parse_errors() {
    for row in [
        "61 * * * *      | minute: 61 is out of range 0-59",
        "0 0 * * 8       | day-of-week: 8 is out of range 0-7",
        "0 0 32 * *      | day-of-month: 32 is out of range 1-31",
        "0 0 * JANUARY * | month: \"JANUARY\" is not a number 1-12 or a month name JAN-DEC",
        "0 10-2 * * *    | hour: 10-2 is a reversed range (its start is above its end)",
        "0 0 */0 * *     | day-of-month: */0 has a zero step",
        "0,,30 * * * *   | minute: \"0,,30\" has an empty list item",
        "0 ? * * *       | hour: ? uses \"?\", which only the day-of-month and day-of-week fields accept (as \"*\")",
        "TZ=Europe/Berlin 0 3 * * *           | \"TZ=Europe/Berlin\" in the schedule is not supported: set spec.timeZone to \"Europe/Berlin\" instead",
        "CRON_TZ=America/New_York 0 3 * * *   | \"CRON_TZ=America/New_York\" in the schedule is not supported: set spec.timeZone to \"America/New_York\" instead",
        "0 0 3 * * *     | expected 5 fields (minute hour day-of-month month day-of-week), found 6: a seconds (or year) field is not supported",
        "@every 1h       | \"@every 1h\" is not supported: write the interval as five fields, e.g. \"*/10 * * * *\"",
        "@reboot         | \"@reboot\" is not supported: a schedule has no boot to run at",
        "@fortnightly    | unknown macro \"@fortnightly\": use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly (lowercase)",
        "                | the schedule is empty: write five fields (minute hour day-of-month month day-of-week) or a macro such as @daily",
    ] {
        let [expr, message] = cells(row);
        assert_eq!(
            Schedule::parse(expr).unwrap_err().to_string(),
            message,
            "{row}"
        );
    }
    assert!(matches!(
        Schedule::from_str("0 0 * * 9"),
        Err(ScheduleError::OutOfRange {
            field: CronField::DayOfWeek,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// Missed starts
// ---------------------------------------------------------------------------

/// `-` for "none".
fn maybe(cell: &str) -> Option<&str> {
    (cell != "-").then_some(cell)
}

#[test]
fn missed_start_times() {
    // schedule | since | now | startingDeadlineSeconds | to run | missed | too late | next
    for row in [
        // None missed: nothing due yet.
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T10:30:00Z | -  | - | 0 | - | 2024-01-01T11:00:00Z",
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T10:30:00Z | 60 | - | 0 | - | 2024-01-01T11:00:00Z",
        // Due exactly now.
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T11:00:00Z | - | 2024-01-01T11:00:00Z | 1 | - | 2024-01-01T12:00:00Z",
        // One missed, within the deadline (5 minutes late, 10 allowed).
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T11:05:00Z | 600 | 2024-01-01T11:00:00Z | 1 | - | 2024-01-01T12:00:00Z",
        // One missed, beyond the deadline (15 minutes late, 10 allowed).
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T11:15:00Z | 600 | - | 0 | 2024-01-01T11:00:00Z | 2024-01-01T12:00:00Z",
        // Several missed: the latest runs, the others are dropped ...
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T13:30:00Z | - | 2024-01-01T13:00:00Z | 3 | - | 2024-01-01T14:00:00Z",
        // ... and a deadline narrows the window.
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T13:30:00Z | 3600 | 2024-01-01T13:00:00Z | 1 | 2024-01-01T12:00:00Z | 2024-01-01T14:00:00Z",
        // A zero deadline leaves an empty window.
        "0 * * * * | 2024-01-01T10:00:00Z | 2024-01-01T11:00:00Z | 0 | - | 0 | 2024-01-01T11:00:00Z | 2024-01-01T12:00:00Z",
        // Exactly 100 missed is not too many; 101 is.
        "* * * * * | 2024-01-01T00:00:00Z | 2024-01-01T01:40:00Z | - | 2024-01-01T01:40:00Z | 100 | - | 2024-01-01T01:41:00Z",
        "* * * * * | 2024-01-01T00:00:00Z | 2024-01-01T01:41:00Z | - | 2024-01-01T01:41:00Z | 101 | - | 2024-01-01T01:42:00Z",
        // More than 100 (288 five-minute slots in a day): the latest still runs.
        "*/5 * * * * | 2024-01-01T00:00:00Z | 2024-01-02T00:02:00Z | - | 2024-01-02T00:00:00Z | 101 | - | 2024-01-02T00:05:00Z",
        // Decades of minutes (a wrong clock): still quick, still the latest.
        "* * * * * | 1990-01-01T00:00:00Z | 2024-06-01T12:34:56Z | - | 2024-06-01T12:34:00Z | 101 | - | 2024-06-01T12:35:00Z",
        // ... unless the deadline cuts the window to fewer.
        "*/5 * * * * | 2024-01-01T00:00:00Z | 2024-01-02T00:02:00Z | 3600 | 2024-01-02T00:00:00Z | 12 | 2024-01-01T23:00:00Z | 2024-01-02T00:05:00Z",
        // Created in the future (clock skew): nothing before the creation.
        "0 * * * * | 2024-01-01T12:00:00Z | 2024-01-01T11:00:00Z | - | - | 0 | - | 2024-01-01T13:00:00Z",
        // An irregular schedule, where CronJob's estimate (from the first gap,
        // 4 h) walks past Friday 14:30 and finds nothing: it is found here.
        "30 6-16/4 * * 1-5 | 2024-01-05T06:30:00Z | 2024-01-08T06:00:00Z | - | 2024-01-05T14:30:00Z | 2 | - | 2024-01-08T06:30:00Z",
        // Never: nothing due, no next.
        "0 0 30 2 * | 2024-01-01T00:00:00Z | 2024-06-01T00:00:00Z | - | - | 0 | - | -",
    ] {
        let [expr, since, now, deadline, to_run, missed, too_late, next] = cells(row);
        let deadline = maybe(deadline).map(|d| d.parse().unwrap());
        let got = missed_starts(&sched(expr), &TimeZone::UTC, ts(since), ts(now), deadline);
        let missed: u32 = missed.parse().unwrap();
        assert_eq!(got.to_run, maybe(to_run).map(ts), "{row}: to run");
        assert_eq!(got.missed, missed, "{row}: missed");
        assert_eq!(got.too_many(), missed > MAX_MISSED, "{row}: too many");
        assert_eq!(got.too_late, maybe(too_late).map(ts), "{row}: too late");
        assert_eq!(got.next, maybe(next).map(ts), "{row}: next");
    }
    // In a zone, across a skipped 02:30: nothing was due.
    let got = missed_starts(
        &sched("30 2 * * *"),
        &tz("Europe/Berlin"),
        ts("2024-03-30T02:30:00+01:00"),
        ts("2024-03-31T12:00:00+02:00"),
        None,
    );
    assert_eq!((got.to_run, got.missed), (None, 0));
    assert_eq!(got.next, Some(ts("2024-04-01T02:30:00+02:00")));
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One item of a field, with how to write its values.
#[derive(Clone, Debug)]
enum Item {
    Value(u8),
    Range(u8, u8),
    /// `*/n`.
    Every(u8),
    RangeStep(u8, u8, u8),
    /// `a/n`.
    FromStep(u8, u8),
}

/// A field: `*` (or `?` in day fields, written by ours only), or a list.
#[derive(Clone, Debug)]
enum Field {
    Star { question: bool },
    Items(Vec<Item>, u8),
}

/// min, max (accepted), last (`*` and `a/n` end).
fn bounds(field: CronField) -> (u8, u8, u8) {
    match field {
        CronField::DayOfWeek => (0, 7, 6),
        other => (other.min(), other.max(), other.max()),
    }
}

fn item(field: CronField) -> BoxedStrategy<Item> {
    let (min, max, last) = bounds(field);
    let span = last - min + 1;
    // `*/1` in a day field is unrestricted for robfig, restricted for croner.
    let min_every = if matches!(field, CronField::DayOfMonth | CronField::DayOfWeek) {
        2
    } else {
        1
    };
    prop_oneof![
        3 => (min..=max).prop_map(Item::Value),
        2 => (min..=max, min..=max).prop_map(|(a, b)| Item::Range(a.min(b), a.max(b))),
        2 => (min_every..=span).prop_map(Item::Every),
        1 => (min..=max, min..=max, 1..=span).prop_map(|(a, b, n)| Item::RangeStep(a.min(b), a.max(b), n)),
        1 => (min..=last, 1..=span).prop_map(|(a, n)| Item::FromStep(a, n)),
    ]
    .boxed()
}

fn field(f: CronField, star_weight: u32) -> BoxedStrategy<Field> {
    prop_oneof![
        star_weight => any::<bool>().prop_map(|question| Field::Star { question }),
        4 => (prop::collection::vec(item(f), 1..=3), any::<u8>()).prop_map(|(items, style)| Field::Items(items, style)),
    ]
    .boxed()
}

/// A value as ours reads it: a name (in some case) when `style` says so.
fn value_ours(f: CronField, v: u8, style: u8) -> String {
    let name = match f {
        CronField::Month if style.is_multiple_of(3) => MONTHS.get(usize::from(v) - 1).copied(),
        CronField::DayOfWeek if style.is_multiple_of(3) && v < 7 => {
            DAYS.get(usize::from(v)).copied()
        }
        _ => None,
    };
    match (name, style % 2) {
        (Some(n), 0) => n.to_ascii_uppercase(),
        (Some(n), _) => n.to_owned(),
        (None, _) => v.to_string(),
    }
}

/// The field as ours reads it and as croner reads it.
fn render(f: CronField, field: &Field) -> (String, String) {
    let (_, _, last) = bounds(f);
    match field {
        Field::Star { question } => {
            let day = matches!(f, CronField::DayOfMonth | CronField::DayOfWeek);
            let ours = if *question && day { "?" } else { "*" };
            (ours.to_owned(), "*".to_owned())
        }
        Field::Items(items, style) => {
            let v = |x: u8| value_ours(f, x, *style);
            let (ours, theirs): (Vec<String>, Vec<String>) = items
                .iter()
                .map(|item| match *item {
                    Item::Value(a) => (v(a), a.to_string()),
                    Item::Range(a, b) => (format!("{}-{}", v(a), v(b)), format!("{a}-{b}")),
                    Item::Every(n) => (format!("*/{n}"), format!("*/{n}")),
                    Item::RangeStep(a, b, n) => {
                        (format!("{}-{}/{n}", v(a), v(b)), format!("{a}-{b}/{n}"))
                    }
                    Item::FromStep(a, n) => (format!("{}/{n}", v(a)), format!("{a}-{last}/{n}")),
                })
                .unzip();
            (ours.join(","), theirs.join(","))
        }
    }
}

/// A five-field expression, as ours and as croner read it.
fn expression() -> impl Strategy<Value = (String, String)> {
    (
        field(CronField::Minute, 1),
        field(CronField::Hour, 2),
        field(CronField::DayOfMonth, 4),
        field(CronField::Month, 4),
        field(CronField::DayOfWeek, 4),
    )
        .prop_map(|(mi, h, dom, mo, dow)| {
            let parts = [
                render(CronField::Minute, &mi),
                render(CronField::Hour, &h),
                render(CronField::DayOfMonth, &dom),
                render(CronField::Month, &mo),
                render(CronField::DayOfWeek, &dow),
            ];
            let ours: Vec<&str> = parts.iter().map(|(o, _)| o.as_str()).collect();
            let theirs: Vec<&str> = parts.iter().map(|(_, t)| t.as_str()).collect();
            (ours.join(" "), theirs.join(" "))
        })
}

/// An instant from 1970 to 2100, on a whole minute half of the time.
fn instant() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, any::<bool>(), 0i32..1_000_000_000).prop_map(|(secs, aligned, nanos)| {
        let secs = if aligned { secs - secs % 60 } else { secs };
        let nanos = if aligned { 0 } else { nanos };
        Timestamp::new(secs, nanos).unwrap()
    })
}

/// Zones with DST (some by 30 minutes, some at midnight, one skipping a day)
/// and one without.
const ZONES: [&str; 9] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Asia/Kolkata",
];

/// The zone's transitions from 2010 to 2030.
fn transitions(zone: &TimeZone) -> Vec<Timestamp> {
    let end = ts("2030-01-01T00:00:00Z");
    zone.following(ts("2010-01-01T00:00:00Z"))
        .map(|t| t.timestamp())
        .take_while(|t| *t < end)
        .collect()
}

/// A zone and an instant within six hours of one of its transitions (or
/// anywhere in 2010-2030 for a zone without).
fn zoned_instant() -> impl Strategy<Value = (&'static str, Timestamp)> {
    (
        0..ZONES.len(),
        any::<prop::sample::Index>(),
        -21_600i64..21_600,
        0i64..631_152_000,
    )
        .prop_map(|(z, pick, offset, anywhere)| {
            let zone = ZONES[z];
            let all = transitions(&tz(zone));
            let base = if all.is_empty() {
                ts("2010-01-01T00:00:00Z").as_second() + anywhere
            } else {
                all[pick.index(all.len())].as_second() + offset
            };
            (zone, Timestamp::from_second(base).unwrap())
        })
}

/// Expressions that run often (several times a day), for minute-by-minute
/// checks.
fn frequent() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("*".to_owned()),
            (1u8..=30).prop_map(|n| format!("*/{n}")),
            (0u8..60, 0u8..60).prop_map(|(a, b)| format!("{a},{b}")),
            (0u8..60).prop_map(|a| a.to_string()),
        ],
        prop_oneof![
            Just("*".to_owned()),
            (1u8..=6).prop_map(|n| format!("*/{n}")),
            (0u8..24, 0u8..24).prop_map(|(a, b)| format!("{a},{b}")),
            (0u8..24).prop_map(|a| a.to_string()),
        ],
        prop_oneof![Just("*"), Just("1-15"), Just("*/2")],
        prop_oneof![Just("*"), Just("1-6")],
        prop_oneof![Just("*"), Just("1-5"), Just("0,6")],
    )
        .prop_map(|(mi, h, dom, mo, dow)| format!("{mi} {h} {dom} {mo} {dow}"))
}

/// Croner's next time after `t`, in UTC, or `None` if it has none.
fn croner_next(cron: &Cron, t: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&t.to_zoned(TimeZone::UTC), false)
        .ok()
        .map(|z| z.timestamp())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(CASES))]

    /// In UTC, the next five times agree with croner's.
    #[test]
    fn agrees_with_croner_in_utc((ours, theirs) in expression(), start in instant()) {
        let schedule = Schedule::parse(&ours).map_err(|e| TestCaseError::fail(format!("{ours}: {e}")))?;
        let reference = Cron::from_str(&theirs).map_err(|e| TestCaseError::fail(format!("croner {theirs}: {e}")))?;
        // Unsatisfiable (30 February): croner searches for millennia.
        prop_assume!(schedule.is_satisfiable());
        let utc = TimeZone::UTC;
        let mut t = start;
        for _ in 0..5 {
            let got = next_after(&schedule, &utc, t);
            let want = croner_next(&reference, t);
            match got {
                Some(got) => {
                    prop_assert_eq!(Some(got), want, "{} / {} after {}", ours, theirs, t);
                    t = got;
                }
                None => {
                    // Only past robfig's five-year horizon.
                    let limit = i32::from(t.to_zoned(utc.clone()).year()) + 5;
                    if let Some(w) = want {
                        prop_assert!(i32::from(w.to_zoned(utc.clone()).year()) > limit,
                            "{} / {} after {}: none, croner {}", ours, theirs, t, w);
                    }
                    break;
                }
            }
        }
    }

    /// The normalized expression parses back to the same schedule.
    #[test]
    fn display_round_trips((ours, _) in expression()) {
        let schedule = Schedule::parse(&ours).map_err(|e| TestCaseError::fail(format!("{ours}: {e}")))?;
        let normal = schedule.to_string();
        prop_assert_eq!(Schedule::parse(&normal).ok(), Some(schedule), "{} -> {}", ours, normal);
        prop_assert_eq!(Schedule::parse(&normal).map(|s| s.to_string()).ok(), Some(normal.clone()));
    }

    /// No input panics the parser; every error has a reason.
    #[test]
    fn parser_never_panics(text in "[-0-9a-zA-Z*?/,@= ]{0,40}") {
        if let Err(e) = Schedule::parse(&text) {
            prop_assert!(!e.reason().is_empty());
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Near DST transitions: next_after(t) is after t, scheduled, and no
    /// scheduled minute lies between (checked over up to a day).
    #[test]
    fn next_is_the_first_scheduled_minute(expr in frequent(), (zone, start) in zoned_instant()) {
        let schedule = sched(&expr);
        let zone_tz = tz(zone);
        let next = next_after(&schedule, &zone_tz, start);
        let Some(next) = next else {
            return Err(TestCaseError::fail(format!("{expr} in {zone} after {start}: none")));
        };
        first_scheduled_minute(start, next, |at| is_scheduled_at(&schedule, &zone_tz, at))
            .map_err(|e| TestCaseError::fail(format!("{expr} in {zone}: {e}")))?;
    }

    /// The same for any expression, in UTC.
    #[test]
    fn next_is_the_first_scheduled_minute_in_utc((ours, _) in expression(), start in instant()) {
        let schedule = sched(&ours);
        let utc = TimeZone::UTC;
        if let Some(next) = next_after(&schedule, &utc, start) {
            prop_assert!(is_scheduled_at(&schedule, &utc, next), "{} after {}: {} not scheduled", ours, start, next);
            // The minutes between, checked on the wall clock directly.
            first_scheduled_minute(start, next, |at| schedule.matches(at.to_zoned(utc.clone()).datetime()))
                .map_err(|e| TestCaseError::fail(format!("{ours}: {e}")))?;
        }
    }

    /// missed_starts agrees with walking the window by times_between.
    #[test]
    fn missed_starts_agrees_with_walk(
        expr in frequent(),
        (zone, since) in zoned_instant(),
        minutes in 0i64..3000,
        deadline in prop::option::of(0u64..200_000),
    ) {
        let schedule = sched(&expr);
        let zone_tz = tz(zone);
        let now = Timestamp::from_second(since.as_second() + minutes * 60 + 7).unwrap();
        let got = missed_starts(&schedule, &zone_tz, since, now, deadline);
        let window_start = deadline
            .map(|d| Timestamp::from_second(now.as_second() - i64::try_from(d).unwrap()).unwrap())
            .filter(|start| *start > since)
            .unwrap_or(since);
        prop_assert_eq!(got.window_start, window_start);
        let walk = times_between(&schedule, &zone_tz, window_start, now, usize::MAX);
        prop_assert_eq!(got.to_run, walk.last().copied());
        prop_assert_eq!(got.missed, u32::try_from(walk.len()).unwrap().min(MAX_MISSED + 1));
        let cut = times_between(&schedule, &zone_tz, since, window_start, usize::MAX);
        prop_assert_eq!(got.too_late, cut.last().copied());
        prop_assert_eq!(got.next, next_after(&schedule, &zone_tz, since.max(now)));
    }

    /// latest_in agrees with walking times_between.
    #[test]
    fn latest_agrees_with_walk(expr in frequent(), (zone, start) in zoned_instant(), hours in 1i64..48) {
        let schedule = sched(&expr);
        let zone_tz = tz(zone);
        let until = Timestamp::from_second(start.as_second() + hours * 3600).unwrap();
        let walk = times_between(&schedule, &zone_tz, start, until, usize::MAX);
        prop_assert_eq!(latest_in(&schedule, &zone_tz, start, until), walk.last().copied());
        prop_assert!(walk.windows(2).all(|w| w[0] < w[1]));
    }
}
