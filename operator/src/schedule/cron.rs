//! Cron expressions as Kubernetes CronJob accepts them (robfig/cron v3's
//! standard parser), parsed into bitsets.
//!
//! Five fields separated by blanks: minute `0-59`, hour `0-23`, day of month
//! `1-31`, month `1-12` or `JAN`-`DEC`, day of week `0-7` or `SUN`-`SAT`
//! (`0` and `7` are Sunday; names are case-insensitive). A field is a list
//! `a,b,…` of items, each a value `a`, a range `a-b`, `*`, or one of these
//! with a step: `*/n`, `a-b/n`, or `a/n` (from `a` to the end of the field).
//! `?` stands for `*` in the two day fields. The macros `@yearly`
//! (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`
//! are accepted, lowercase as CronJob has them.
//!
//! Rejected, each with a message naming the field and the offending text:
//! `TZ=`/`CRON_TZ=` prefixes (the time zone is `spec.timeZone`), `@every`,
//! `@reboot`, six- or seven-field forms (seconds, years), values out of range,
//! reversed ranges, zero steps and empty list items.
//!
//! Day of month and day of week combine as in robfig/cron (and Vixie cron):
//! when both are restricted, a day matches if *either* matches
//! (`0 0 13 * 5` runs on every 13th and every Friday); when one of them is
//! unrestricted, both must match. A field is unrestricted when one of its
//! items is `*` or `?` without a step (or with step 1) — robfig's "star bit";
//! `*/2` restricts the field.
//!
//! Where this parser differs from robfig/cron v3's `ParseStandard` (which
//! CronJob validates with), as issue #16 asks or stricter: it accepts `7`
//! for Sunday (robfig's day-of-week bound is 6); it rejects `@every`
//! (robfig takes `@every <duration>`), `?` outside the day fields, empty
//! list items (robfig drops them), `+5` and `*-5` (robfig reads them as 5
//! and `*`).

use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;

use super::ScheduleError;

/// The month names, `JAN` = 1.
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
/// The day names, `SUN` = 0.
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The macros and the five fields each stands for (as robfig/cron defines
/// them: `@yearly` restricts the day of month, `@weekly` the day of week).
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// One of the five fields of a cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Minute of the hour, 0-59.
    Minute,
    /// Hour of the day, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or JAN-DEC.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or SUN-SAT.
    DayOfWeek,
}

impl CronField {
    /// The smallest value the field accepts.
    pub fn min(self) -> u8 {
        match self {
            CronField::Minute | CronField::Hour | CronField::DayOfWeek => 0,
            CronField::DayOfMonth | CronField::Month => 1,
        }
    }

    /// The largest value the field accepts (7, Sunday again, for the day of week).
    pub fn max(self) -> u8 {
        match self {
            CronField::Minute => 59,
            CronField::Hour => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
        }
    }

    /// The last value `*` and `a/n` reach: [`Self::max`], but 6 (Saturday) for
    /// the day of week, as in robfig/cron.
    fn last(self) -> u8 {
        match self {
            CronField::DayOfWeek => 6,
            other => other.max(),
        }
    }

    /// The field's name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// What a value of the field may be, for messages.
    pub(crate) fn accepted(self) -> &'static str {
        match self {
            CronField::Minute => "a number 0-59",
            CronField::Hour => "a number 0-23",
            CronField::DayOfMonth => "a number 1-31",
            CronField::Month => "a number 1-12 or a month name JAN-DEC",
            CronField::DayOfWeek => "a number 0-7 or a day name SUN-SAT",
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &MONTHS,
            CronField::DayOfWeek => &DAYS,
            _ => &[],
        }
    }

    fn is_day(self) -> bool {
        matches!(self, CronField::DayOfMonth | CronField::DayOfWeek)
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of values below 64: bit `v` is value `v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Bits(u64);

impl Bits {
    fn contains(self, v: u8) -> bool {
        v < 64 && (self.0 >> v) & 1 == 1
    }

    /// The smallest member `>= v`.
    fn first_from(self, v: u8) -> Option<u8> {
        if v >= 64 {
            return None;
        }
        let rest = self.0 >> v;
        (rest != 0).then(|| v + rest.trailing_zeros() as u8)
    }

    fn values(self) -> impl Iterator<Item = u8> {
        (0..64u8).filter(move |v| self.contains(*v))
    }
}

/// A parsed cron schedule: one bitset per field, plus whether each day field
/// is unrestricted (robfig/cron's star bit), which decides how the two day
/// fields combine. Two schedules are equal when they run at the same times.
///
/// [`Display`](fmt::Display) gives a normalized expression (numbers, ranges,
/// steps; macros expanded) that parses back to an equal schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    minutes: Bits,
    hours: Bits,
    days_of_month: Bits,
    months: Bits,
    /// Sunday is bit 0 (a `7` is folded into it).
    days_of_week: Bits,
    dom_star: bool,
    dow_star: bool,
}

impl Schedule {
    /// Parses a schedule as CronJob's `spec.schedule` (see the module docs).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let spec = text.trim();
        let Some(first) = spec.split_whitespace().next() else {
            return Err(ScheduleError::Empty);
        };
        let upper = first.to_ascii_uppercase();
        if upper.starts_with("TZ=") || upper.starts_with("CRON_TZ=") {
            let zone = first.split_once('=').map_or("", |(_, zone)| zone);
            return Err(ScheduleError::TimeZoneInSchedule {
                prefix: first.to_owned(),
                zone: zone.to_owned(),
            });
        }
        if spec.starts_with('@') {
            if let Some((_, fields)) = MACROS.iter().find(|(name, _)| *name == spec) {
                return parse_fields(fields);
            }
            if first == "@every" || first == "@reboot" {
                return Err(ScheduleError::UnsupportedMacro {
                    text: spec.to_owned(),
                });
            }
            return Err(ScheduleError::UnknownMacro {
                text: spec.to_owned(),
            });
        }
        parse_fields(spec)
    }

    /// Whether the civil date and time `dt` is one the schedule names: on a
    /// whole minute (zero seconds) whose minute, hour, month and day match.
    /// Time zones play no part here; see [`super::is_scheduled_at`].
    pub fn matches(&self, dt: DateTime) -> bool {
        dt.second() == 0
            && dt.subsec_nanosecond() == 0
            && self.months.contains(small(dt.month()))
            && self.day_matches(small(dt.day()), small(dt.weekday().to_sunday_zero_offset()))
            && self.hours.contains(small(dt.hour()))
            && self.minutes.contains(small(dt.minute()))
    }

    /// Whether the day fields combine with OR (both restricted) rather than AND.
    pub fn days_either(&self) -> bool {
        !self.dom_star && !self.dow_star
    }

    /// Whether the schedule names a day that exists in some year. False for
    /// `0 0 30 2 *` or `0 0 31 4,6 *`, which CronJob accepts and never runs
    /// ([`super::next_after`] returns `None` for them).
    pub fn is_satisfiable(&self) -> bool {
        if self.days_either() {
            // Every listed weekday occurs in every month.
            return true;
        }
        (1..=12u8)
            .filter(|m| self.months.contains(*m))
            .any(|m| self.days_of_month.values().any(|d| d <= max_days(m)))
    }

    /// Whether a day (day of month, weekday with Sunday = 0) matches the two
    /// day fields.
    pub(crate) fn day_matches(&self, day: u8, weekday: u8) -> bool {
        let dom = self.days_of_month.contains(day);
        let dow = self.days_of_week.contains(weekday);
        if self.days_either() {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first listed month `>= month`.
    pub(crate) fn month_from(&self, month: u8) -> Option<u8> {
        self.months.first_from(month)
    }

    /// The first listed hour `>= hour`.
    pub(crate) fn hour_from(&self, hour: u8) -> Option<u8> {
        self.hours.first_from(hour)
    }

    /// The first listed minute `>= minute`.
    pub(crate) fn minute_from(&self, minute: u8) -> Option<u8> {
        self.minutes.first_from(minute)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            render(CronField::Minute, self.minutes, false),
            render(CronField::Hour, self.hours, false),
            render(CronField::DayOfMonth, self.days_of_month, self.dom_star),
            render(CronField::Month, self.months, false),
            render(CronField::DayOfWeek, self.days_of_week, self.dow_star),
        )
    }
}

/// A civil-time part (jiff keeps them in range) as `u8`; an impossible
/// negative value becomes 255, which no field contains.
fn small(v: i8) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// Days in a month in a leap year (the most it can have).
fn max_days(month: u8) -> u8 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_fields(spec: &str) -> Result<Schedule, ScheduleError> {
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        return Err(ScheduleError::FieldCount {
            found: fields.len(),
        });
    };
    let (minutes, _) = parse_field(CronField::Minute, minute)?;
    let (hours, _) = parse_field(CronField::Hour, hour)?;
    let (days_of_month, dom_star) = parse_field(CronField::DayOfMonth, dom)?;
    let (months, _) = parse_field(CronField::Month, month)?;
    let (days_of_week, dow_star) = parse_field(CronField::DayOfWeek, dow)?;
    Ok(Schedule {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        dom_star,
        dow_star,
    })
}

/// One field: its values, and whether it is unrestricted (an item `*` or
/// `?` without a step, or with step 1).
fn parse_field(field: CronField, text: &str) -> Result<(Bits, bool), ScheduleError> {
    let mut bits = 0u64;
    let mut star = false;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(ScheduleError::EmptyListItem {
                field,
                text: text.to_owned(),
            });
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(field, item, step)?)),
            None => (item, None),
        };
        let wildcard = range == "*" || range == "?";
        if range == "?" && !field.is_day() {
            return Err(ScheduleError::MisplacedQuestionMark {
                field,
                text: item.to_owned(),
            });
        }
        let (start, end) = if wildcard {
            (field.min(), field.last())
        } else if let Some((low, high)) = range.split_once('-') {
            let low = parse_value(field, item, low)?;
            let high = parse_value(field, item, high)?;
            if low > high {
                return Err(ScheduleError::ReversedRange {
                    field,
                    text: range.to_owned(),
                });
            }
            (low, high)
        } else {
            let value = parse_value(field, item, range)?;
            // `a/n` runs from `a` to the end of the field.
            (
                value,
                if step.is_some() {
                    field.last().max(value)
                } else {
                    value
                },
            )
        };
        let step = step.unwrap_or(1);
        if wildcard && step == 1 {
            star = true;
        }
        let mut v = u32::from(start);
        while v <= u32::from(end) {
            bits |= 1 << v;
            v += step;
        }
    }
    if field == CronField::DayOfWeek && bits & (1 << 7) != 0 {
        bits = (bits & !(1 << 7)) | 1;
    }
    Ok((Bits(bits), star))
}

/// A value: digits in range, or a name the field accepts.
fn parse_value(field: CronField, item: &str, text: &str) -> Result<u8, ScheduleError> {
    if text.is_empty() || text.contains(['*', '?', '-']) {
        return Err(ScheduleError::InvalidSyntax {
            field,
            text: item.to_owned(),
        });
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = digits(text);
        return match u8::try_from(value) {
            Ok(v) if (field.min()..=field.max()).contains(&v) => Ok(v),
            _ => Err(ScheduleError::OutOfRange {
                field,
                text: text.to_owned(),
            }),
        };
    }
    let base = field.min();
    field
        .names()
        .iter()
        .zip(base..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| value)
        .ok_or_else(|| ScheduleError::InvalidValue {
            field,
            text: text.to_owned(),
        })
}

/// A step: digits, not zero. Steps past the field's span act alike, so
/// they are capped at 64.
fn parse_step(field: CronField, item: &str, text: &str) -> Result<u32, ScheduleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::InvalidStep {
            field,
            text: item.to_owned(),
        });
    }
    match digits(text) {
        0 => Err(ScheduleError::ZeroStep {
            field,
            text: item.to_owned(),
        }),
        step => Ok(step.min(64)),
    }
}

/// The value of a run of ASCII digits, saturating.
fn digits(text: &str) -> u32 {
    text.bytes().fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    })
}

/// A field in normalized form: `*`, `*/n`, `a-b/n`, or a list of values and
/// ranges. A day field that is restricted but full is written `1-31`/`0-6`,
/// so that it stays restricted when parsed again.
fn render(field: CronField, bits: Bits, star: bool) -> String {
    let full = (field.min()..=field.last()).all(|v| bits.contains(v));
    if star || (full && !field.is_day()) {
        return "*".to_owned();
    }
    let values: Vec<u8> = bits.values().collect();
    if let [first, second, _, ..] = values.as_slice() {
        let step = second - first;
        if step >= 2 && values.windows(2).all(|w| w[1] - w[0] == step) {
            let last = values.last().copied().unwrap_or(*first);
            if *first == field.min() && last + step > field.last() {
                return format!("*/{step}");
            }
            return format!("{first}-{last}/{step}");
        }
    }
    let mut parts = Vec::new();
    for run in values.chunk_by(|a, b| *a + 1 == *b) {
        match run {
            [first, _, _, ..] => {
                let last = run.last().copied().unwrap_or(*first);
                parts.push(format!("{first}-{last}"));
            }
            _ => parts.extend(run.iter().map(u8::to_string)),
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(bits: Bits) -> Vec<u8> {
        bits.values().collect()
    }

    #[test]
    fn fields_lists_ranges_steps() {
        let s = Schedule::parse("1,2,10-12 */6 1/10 JAN-mar,Dec mon-FRI").unwrap();
        assert_eq!(values(s.minutes), [1, 2, 10, 11, 12]);
        assert_eq!(values(s.hours), [0, 6, 12, 18]);
        assert_eq!(values(s.days_of_month), [1, 11, 21, 31]);
        assert_eq!(values(s.months), [1, 2, 3, 12]);
        assert_eq!(values(s.days_of_week), [1, 2, 3, 4, 5]);
        assert!(s.days_either());
        let s = Schedule::parse("0-30/10 5/7 ? * 5-7").unwrap();
        assert_eq!(values(s.minutes), [0, 10, 20, 30]);
        assert_eq!(values(s.hours), [5, 12, 19]);
        assert_eq!(values(s.days_of_week), [0, 5, 6]);
        assert!(s.dom_star && !s.dow_star && !s.days_either());
        // `a/n` in the day of week stops at Saturday, as in robfig/cron.
        let s = Schedule::parse("0 0 * * 1/2").unwrap();
        assert_eq!(values(s.days_of_week), [1, 3, 5]);
        assert_eq!(
            values(Schedule::parse("0 0 * * 7").unwrap().days_of_week),
            [0]
        );
        assert_eq!(
            values(Schedule::parse("0 0 * * 7/3").unwrap().days_of_week),
            [0]
        );
    }

    #[test]
    fn star_bit_as_robfig() {
        for (expr, dom_star, dow_star) in [
            ("0 0 * * *", true, true),
            ("0 0 ? * ?", true, true),
            ("0 0 */1 * */1", true, true),
            ("0 0 */2 * *", false, true),
            ("0 0 1,* * 1", true, false),
            ("0 0 ?/2 * 1", false, false),
            ("0 0 1-31 * 0-6", false, false),
        ] {
            let s = Schedule::parse(expr).unwrap();
            assert_eq!((s.dom_star, s.dow_star), (dom_star, dow_star), "{expr}");
        }
    }

    #[test]
    fn macros() {
        for (m, fields) in MACROS {
            assert_eq!(
                Schedule::parse(m).unwrap(),
                Schedule::parse(fields).unwrap()
            );
            assert_eq!(Schedule::parse(m).unwrap().to_string(), fields, "{m}");
        }
        assert_eq!(
            Schedule::parse(" @daily\t").unwrap(),
            Schedule::parse("0 0 * * *").unwrap()
        );
    }

    #[test]
    fn display_normalizes_and_round_trips() {
        for (expr, normal) in [
            ("*/15 * * * *", "*/15 * * * *"),
            ("0,15,30,45 0-23 * 1-12 *", "*/15 * * * *"),
            ("5/15 * * * *", "5-50/15 * * * *"),
            ("1,2,3,5 9-17 1-31 jan,feb * ", "1-3,5 9-17 1-31 1,2 *"),
            ("0 0 * * 1-7", "0 0 * * 0-6"),
            ("0 0 * * SUN,sat", "0 0 * * 0,6"),
            ("0 0 13 * FRI", "0 0 13 * 5"),
            ("0 0 */2 * *", "0 0 */2 * *"),
            ("0 0 1,* * 1", "0 0 * * 1"),
            ("59 23 31 12 *", "59 23 31 12 *"),
        ] {
            let s = Schedule::parse(expr).unwrap();
            assert_eq!(s.to_string(), normal, "{expr}");
            assert_eq!(Schedule::parse(normal).unwrap(), s, "{expr}");
        }
    }

    #[test]
    fn errors_name_field_and_text() {
        for (expr, message, reason) in [
            ("", "the schedule is empty", "EmptySchedule"),
            (
                "61 * * * *",
                "minute: 61 is out of range 0-59",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 24 * * *",
                "hour: 24 is out of range 0-23",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 0 0 * *",
                "day-of-month: 0 is out of range 1-31",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 0 * 13 *",
                "month: 13 is out of range 1-12",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 0 * * 8",
                "day-of-week: 8 is out of range 0-7",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 0 * * 99999999999",
                "day-of-week: 99999999999 is out of range",
                "ScheduleValueOutOfRange",
            ),
            (
                "0 5-3 * * *",
                "hour: 5-3 is a reversed range",
                "ReversedScheduleRange",
            ),
            (
                "*/0 * * * *",
                "minute: */0 has a zero step",
                "ZeroScheduleStep",
            ),
            (
                "*/x * * * *",
                "minute: the step of */x is not a number",
                "InvalidScheduleStep",
            ),
            (
                "1-2/ * * * *",
                "minute: the step of 1-2/ is not a number",
                "InvalidScheduleStep",
            ),
            (
                "1,,2 * * * *",
                "minute: \"1,,2\" has an empty list item",
                "EmptyScheduleListItem",
            ),
            (
                "0 0 1, * *",
                "day-of-month: \"1,\" has an empty list item",
                "EmptyScheduleListItem",
            ),
            ("? * * * *", "minute: ? uses \"?\"", "MisplacedQuestionMark"),
            (
                "0 0 * FOO *",
                "month: \"FOO\" is not a number 1-12 or a month name JAN-DEC",
                "InvalidScheduleValue",
            ),
            (
                "0 0 * * monday",
                "day-of-week: \"monday\" is not",
                "InvalidScheduleValue",
            ),
            (
                "0 jan * * *",
                "hour: \"jan\" is not a number 0-23",
                "InvalidScheduleValue",
            ),
            (
                "+5 * * * *",
                "minute: \"+5\" is not a number 0-59",
                "InvalidScheduleValue",
            ),
            (
                "1-2-3 * * * *",
                "minute: \"1-2-3\" is not a value",
                "InvalidScheduleSyntax",
            ),
            (
                "*-5 * * * *",
                "minute: \"*-5\" is not a value",
                "InvalidScheduleSyntax",
            ),
            (
                "-5 * * * *",
                "minute: \"-5\" is not a value",
                "InvalidScheduleSyntax",
            ),
            (
                "1/2/3 * * * *",
                "minute: the step of 1/2/3 is not a number",
                "InvalidScheduleStep",
            ),
            (
                "0 0 * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
                "WrongScheduleFieldCount",
            ),
            (
                "0 0 0 * * *",
                "found 6: a seconds (or year) field is not supported",
                "WrongScheduleFieldCount",
            ),
            (
                "TZ=Europe/Berlin 0 3 * * *",
                "\"TZ=Europe/Berlin\" in the schedule is not supported: set spec.timeZone to \"Europe/Berlin\" instead",
                "TimeZoneInSchedule",
            ),
            (
                "CRON_TZ=UTC @daily",
                "\"CRON_TZ=UTC\" in the schedule is not supported: set spec.timeZone",
                "TimeZoneInSchedule",
            ),
            (
                "@every 5m",
                "\"@every 5m\" is not supported",
                "UnsupportedScheduleMacro",
            ),
            (
                "@reboot",
                "\"@reboot\" is not supported",
                "UnsupportedScheduleMacro",
            ),
            ("@DAILY", "unknown macro \"@DAILY\"", "UnknownScheduleMacro"),
            (
                "@daily 5",
                "unknown macro \"@daily 5\"",
                "UnknownScheduleMacro",
            ),
        ] {
            let err = Schedule::parse(expr).unwrap_err();
            assert!(
                err.to_string().contains(message),
                "{expr:?}: {err} (wanted {message})"
            );
            assert_eq!(err.reason(), reason, "{expr:?}");
        }
    }

    #[test]
    fn satisfiable() {
        for (expr, ok) in [
            ("0 0 30 2 *", false),
            ("0 0 31 4,6,9,11 *", false),
            ("0 0 29 2 *", true),
            ("0 0 30 2 1", true),
            ("0 0 31 * *", true),
        ] {
            assert_eq!(
                Schedule::parse(expr).unwrap().is_satisfiable(),
                ok,
                "{expr}"
            );
        }
    }
}
