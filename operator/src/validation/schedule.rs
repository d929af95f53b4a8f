//! Validation of a `LocustSchedule`: its own CEL rules
//! ([`SCHEDULE_RULES`]), its template's spec by every LocustTest rule (fields
//! reported under `spec.template.spec`), and what CEL cannot say — the cron
//! expression and the time zone, reported with the parser's messages.

use super::schedule_rules::{
    SCHEDULE_RULES, template_field, template_rules, template_webhook_rules,
};
use super::schema::SchemaVersion;
use super::{Violation, typed_schema_violations};
use crate::api::schedule::LocustSchedule;
use crate::api::v2::LocustTest;
use crate::schedule::{Schedule, ScheduleError, time_zone};

/// Every violation of a `LocustSchedule`, in a deterministic order: schema
/// checks, then [`rule_violations`].
pub fn validate_schedule(schedule: &LocustSchedule) -> Vec<Violation> {
    let mut out = typed_schema_violations(SchemaVersion::Schedule, schedule);
    out.extend(rule_violations(schedule));
    out
}

/// The rules of a decoded schedule: [`SCHEDULE_RULES`], the LocustTest CEL
/// rules on the template's spec, then the checks only Rust makes: the cron
/// expression, the time zone, and the LocustTest webhook-only rules on the
/// template's spec.
pub(super) fn rule_violations(schedule: &LocustSchedule) -> Vec<Violation> {
    let template = LocustTest {
        metadata: Default::default(),
        spec: schedule.spec.template.spec.clone(),
        status: None,
    };
    let in_template = |v: Violation| Violation {
        field: template_field(&v.field),
        ..v
    };
    let mut out = super::rule_violations(schedule, SCHEDULE_RULES, []);
    out.extend(
        super::rule_violations(&template, template_rules(), [])
            .into_iter()
            .map(in_template),
    );
    let spec = &schedule.spec;
    if let Err(err) = Schedule::parse(&spec.schedule) {
        out.push(Violation {
            field: "spec.schedule".to_owned(),
            message: format!("not a valid cron schedule: {err}"),
            rule: Some("schedule-syntax"),
        });
    }
    if let Err(err) = time_zone(spec.time_zone.as_deref()) {
        let message = match err {
            ScheduleError::UnknownTimeZone { .. } => format!(
                "{err}: name an IANA time zone such as \"Europe/Berlin\", or leave it unset for UTC"
            ),
            _ => err.to_string(),
        };
        out.push(Violation {
            field: "spec.timeZone".to_owned(),
            message,
            rule: Some("time-zone-known"),
        });
    }
    out.extend(
        super::rule_violations(&template, [], template_webhook_rules())
            .into_iter()
            .map(in_template),
    );
    out
}
