//! The schedule arithmetic behind `LocustSchedule` (issue #16), pure and
//! deterministic, so that the controller is a thin layer over it:
//!
//! - [`cron`]: the cron expressions Kubernetes CronJob accepts (five fields and
//!   the `@hourly`…`@yearly` macros), parsed into bitsets ([`Schedule`]);
//! - [`next`]: the scheduled instants in an IANA time zone — [`next_after`],
//!   [`times_between`], [`latest_in`] — with the daylight-saving rules spelled
//!   out there;
//! - [`missed`]: CronJob's missed-start rule ([`missed_starts`]):
//!   `startingDeadlineSeconds` and "too many missed start times";
//! - [`zone`]: time zone names ([`time_zone`]), looked up in the IANA database
//!   bundled into the binary (never the host's), so results do not depend on
//!   the machine;
//! - [`clock`]: the [`Clock`] the controller reads the time from, with a
//!   settable [`TestClock`];
//! - [`runs`]: the LocustTests a schedule creates — their names
//!   ([`test_name`], which bounds a schedule's name), labels and owner
//!   reference ([`test_for`], [`next_test`]).
//!
//! Instants are [`Timestamp`]s, the type `k8s_openapi`'s `Time` wraps.

pub mod clock;
pub mod cron;
pub mod missed;
pub mod next;
pub mod runs;
pub mod zone;

pub use clock::{Clock, SystemClock, TestClock};
pub use cron::{CronField, Schedule};
pub use jiff::Timestamp;
pub use jiff::tz::TimeZone;
pub use missed::{MAX_MISSED, MissedStarts, missed_starts};
pub use next::{SEARCH_YEARS, is_scheduled_at, latest_in, next_after, times_between};
pub use runs::{
    MAX_SCHEDULE_NAME_LENGTH, RUN_NOW_ANNOTATION, RunError, SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION, next_test, run_now_test_for, run_now_test_name, test_for, test_name,
};
pub use zone::time_zone;

/// Errors of this module: a schedule or a time zone that cannot be used.
/// Every message names what is wrong and quotes the offending text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule is empty or blank.
    #[error(
        "the schedule is empty: write five fields (minute hour day-of-month month day-of-week) or a macro such as @daily"
    )]
    Empty,
    /// The schedule starts with `TZ=` or `CRON_TZ=`.
    #[error("{prefix:?} in the schedule is not supported: set spec.timeZone to {zone:?} instead")]
    TimeZoneInSchedule {
        /// The prefix as written, e.g. `CRON_TZ=Europe/Berlin`.
        prefix: String,
        /// The zone it names, e.g. `Europe/Berlin`.
        zone: String,
    },
    /// `@every` (which robfig/cron, and so CronJob, would take) or `@reboot`.
    #[error("{}", unsupported_macro(text))]
    UnsupportedMacro {
        /// The macro as written.
        text: String,
    },
    /// An `@` word that is not a macro.
    #[error(
        "unknown macro {text:?}: use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly (lowercase)"
    )]
    UnknownMacro {
        /// The word as written.
        text: String,
    },
    /// Not five fields.
    #[error("{}", field_count(*found))]
    FieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// A value outside its field's range.
    #[error("{field}: {text} is out of range {}-{}", field.min(), field.max())]
    OutOfRange {
        /// The field.
        field: CronField,
        /// The value as written.
        text: String,
    },
    /// A value that is neither a number nor a name the field accepts.
    #[error("{field}: {text:?} is not {}", field.accepted())]
    InvalidValue {
        /// The field.
        field: CronField,
        /// The value as written.
        text: String,
    },
    /// `b-a` with `b` above `a`.
    #[error("{field}: {text} is a reversed range (its start is above its end)")]
    ReversedRange {
        /// The field.
        field: CronField,
        /// The range as written.
        text: String,
    },
    /// A step of zero (`*/0`).
    #[error("{field}: {text} has a zero step")]
    ZeroStep {
        /// The field.
        field: CronField,
        /// The item as written.
        text: String,
    },
    /// A step that is not a number (`*/x`).
    #[error("{field}: the step of {text} is not a number")]
    InvalidStep {
        /// The field.
        field: CronField,
        /// The item as written.
        text: String,
    },
    /// An empty item in a list (`1,,2`, `1,`).
    #[error("{field}: {text:?} has an empty list item")]
    EmptyListItem {
        /// The field.
        field: CronField,
        /// The whole field as written.
        text: String,
    },
    /// `?` outside the two day fields.
    #[error(
        "{field}: {text} uses \"?\", which only the day-of-month and day-of-week fields accept (as \"*\")"
    )]
    MisplacedQuestionMark {
        /// The field.
        field: CronField,
        /// The item as written.
        text: String,
    },
    /// More than one `-` or `/` in an item, or `*` in a range.
    #[error("{field}: {text:?} is not a value, a range a-b, or a step */n, a-b/n or a/n")]
    InvalidSyntax {
        /// The field.
        field: CronField,
        /// The item as written.
        text: String,
    },
    /// A time zone name the IANA database does not have.
    #[error("{}", unknown_time_zone(name, suggestion.as_deref()))]
    UnknownTimeZone {
        /// The name as written.
        name: String,
        /// The database's spelling, when the name differs from one only in case.
        suggestion: Option<String>,
    },
    /// `Local`, which would make the schedule depend on the operator's host.
    #[error(
        "time zone {name:?} is not allowed: name an IANA time zone such as \"Europe/Berlin\" (or leave it unset for UTC)"
    )]
    LocalTimeZone {
        /// The name as written.
        name: String,
    },
}

impl ScheduleError {
    /// CamelCase reason, for conditions, Events and validation messages.
    pub fn reason(&self) -> &'static str {
        match self {
            ScheduleError::Empty => "EmptySchedule",
            ScheduleError::TimeZoneInSchedule { .. } => "TimeZoneInSchedule",
            ScheduleError::UnsupportedMacro { .. } => "UnsupportedScheduleMacro",
            ScheduleError::UnknownMacro { .. } => "UnknownScheduleMacro",
            ScheduleError::FieldCount { .. } => "WrongScheduleFieldCount",
            ScheduleError::OutOfRange { .. } => "ScheduleValueOutOfRange",
            ScheduleError::InvalidValue { .. } => "InvalidScheduleValue",
            ScheduleError::ReversedRange { .. } => "ReversedScheduleRange",
            ScheduleError::ZeroStep { .. } => "ZeroScheduleStep",
            ScheduleError::InvalidStep { .. } => "InvalidScheduleStep",
            ScheduleError::EmptyListItem { .. } => "EmptyScheduleListItem",
            ScheduleError::MisplacedQuestionMark { .. } => "MisplacedQuestionMark",
            ScheduleError::InvalidSyntax { .. } => "InvalidScheduleSyntax",
            ScheduleError::UnknownTimeZone { .. } => "UnknownTimeZone",
            ScheduleError::LocalTimeZone { .. } => "LocalTimeZone",
        }
    }
}

fn unsupported_macro(text: &str) -> String {
    if text.starts_with("@every") {
        format!(
            "{text:?} is not supported: write the interval as five fields, e.g. \"*/10 * * * *\""
        )
    } else {
        format!("{text:?} is not supported: a schedule has no boot to run at")
    }
}

fn field_count(found: usize) -> String {
    let base =
        format!("expected 5 fields (minute hour day-of-month month day-of-week), found {found}");
    if found == 6 || found == 7 {
        format!("{base}: a seconds (or year) field is not supported")
    } else {
        base
    }
}

fn unknown_time_zone(name: &str, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => format!("unknown time zone {name:?} (did you mean {s:?}?)"),
        None => format!("unknown time zone {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    /// The instants here are the ones in the Kubernetes API types (jiff 0.2,
    /// which `k8s_openapi` 0.29 uses): no conversion in the controller.
    #[test]
    fn timestamp_is_k8s_openapis() {
        let t: k8s_openapi::jiff::Timestamp = super::Timestamp::UNIX_EPOCH;
        let time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t);
        let _: super::Timestamp = time.0;
    }
}
