//! The admission rules of `LocustSchedule` that CEL can express, declared once
//! like the LocustTest rules ([`super::rules`]): [`SCHEDULE_RULES`] for the
//! schedule itself, and the LocustTest rules re-rooted at the template's spec
//! ([`template_rules`], [`in_template`]). [`crate::crd::schedule_crd`] injects
//! them into the CRD; [`super::schedule`] runs their Rust mirrors.
//!
//! What CEL cannot say (the cron expression, the time zone) is checked in
//! Rust only, by [`super::schedule`], with the parser's own messages.

use super::rules::{CelReason, RULES, Rule, WEBHOOK_RULES, WebhookRule};
use crate::api::schedule::LocustSchedule;
use crate::schedule::runs::{MAX_SCHEDULE_NAME_LENGTH, SCHEDULE_LABEL};

/// Where the template's LocustTest spec sits in a LocustSchedule.
pub const TEMPLATE_SPEC: [&str; 3] = ["spec", "template", "spec"];

/// The rules of the schedule itself, each a CEL expression in the CRD and a Rust mirror.
pub static SCHEDULE_RULES: &[Rule<LocustSchedule>] = &[
    Rule {
        id: "schedule-name-length",
        at: &[],
        // 47 = MAX_SCHEDULE_NAME_LENGTH (a unit test holds them equal).
        cel: "!has(self.metadata.name) || size(self.metadata.name) <= 47",
        field_path: ".metadata.name",
        field: "metadata.name",
        message: "metadata.name of a LocustSchedule must be at most 47 characters so that its tests, named <name>-<minutes since the epoch> (8 digits), are valid LocustTest names (at most 56); choose a shorter name",
        reason: CelReason::Invalid,
        check: |s| {
            s.metadata
                .name
                .as_deref()
                .is_none_or(|n| n.chars().count() <= MAX_SCHEDULE_NAME_LENGTH)
        },
    },
    Rule {
        id: "template-schedule-label-reserved",
        at: &["spec", "template", "metadata"],
        // 'locust.io/schedule' = SCHEDULE_LABEL (a unit test holds them equal).
        cel: "!has(self.labels) || !('locust.io/schedule' in self.labels)",
        field_path: ".labels",
        field: "spec.template.metadata.labels",
        message: "spec.template.metadata.labels must not set locust.io/schedule: the operator sets it to the schedule's name on every test it creates; remove the label",
        reason: CelReason::Forbidden,
        check: |s| !s.spec.template.metadata.labels.contains_key(SCHEDULE_LABEL),
    },
];

/// `path` (a LocustTest location under `spec`) moved under the template's
/// spec: `["spec", "volumes"]` → `["spec", "template", "spec", "volumes"]`.
/// `None` for a location outside `spec` (the name rule), which a template,
/// having no name, does not have.
pub fn in_template(path: &[&'static str]) -> Option<Vec<&'static str>> {
    match path.split_first() {
        Some((&"spec", rest)) => Some(TEMPLATE_SPEC.iter().chain(rest).copied().collect()),
        _ => None,
    }
}

/// A LocustTest field path written under the template's spec:
/// `spec.volumes` → `spec.template.spec.volumes`.
pub fn template_field(field: &str) -> String {
    match field.strip_prefix("spec") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => {
            format!("{}{rest}", TEMPLATE_SPEC.join("."))
        }
        _ => field.to_owned(),
    }
}

/// The LocustTest rules that apply to a template's spec: every rule located
/// under `spec` (all but the name rule, the schedule's own being
/// [`SCHEDULE_RULES`]).
pub fn template_rules() -> impl Iterator<Item = &'static Rule> {
    RULES.iter().filter(|r| in_template(r.at).is_some())
}

/// The LocustTest webhook-only rules that apply to a template's spec (all of them).
pub fn template_webhook_rules() -> impl Iterator<Item = &'static WebhookRule> {
    WEBHOOK_RULES.iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cel_says_what_the_constants_say() {
        let name = &SCHEDULE_RULES[0];
        assert!(
            name.cel
                .ends_with(&format!("<= {MAX_SCHEDULE_NAME_LENGTH}"))
        );
        assert!(
            name.message
                .contains(&format!("at most {MAX_SCHEDULE_NAME_LENGTH} "))
        );
        assert!(
            SCHEDULE_RULES[1]
                .cel
                .contains(&format!("'{SCHEDULE_LABEL}'"))
        );
        assert!(SCHEDULE_RULES[1].message.contains(SCHEDULE_LABEL));
    }

    #[test]
    fn template_paths() {
        assert_eq!(
            in_template(&["spec", "volumes"]),
            Some(vec!["spec", "template", "spec", "volumes"])
        );
        assert_eq!(in_template(&[]), None);
        assert_eq!(template_field("spec.volumes"), "spec.template.spec.volumes");
        assert_eq!(template_field("spec"), "spec.template.spec");
        assert_eq!(template_field("specs"), "specs");
        assert_eq!(template_rules().count(), RULES.len() - 1);
    }
}
