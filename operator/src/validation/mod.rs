//! Admission rules for `LocustTest`, declared once and enforced twice.
//!
//! Every rule that CEL can express is a [`Rule`]: a CEL expression that
//! [`crate::crd`] injects into the CRD schema (`x-kubernetes-validations`), so
//! the API server rejects bad objects even with no webhook running, plus a Rust
//! mirror (`check`) that the validating webhook and the `validate` CLI run. Both
//! report the same `message`, at the same field.
//!
//! [`validate`] (v2) and [`validate_v1`] return every violation, in a fixed
//! order:
//! 1. the checks the CRD's OpenAPI schema makes (required fields, types, enums,
//!    `minimum`/`maximum`, `maxItems`/`maxLength`, unknown fields), read from the
//!    generated schema itself so they can never drift from it;
//! 2. the CEL rules ([`RULES`], [`V1_RULES`]) in declaration order;
//! 3. the webhook-only rules CEL cannot express ([`WEBHOOK_RULES`],
//!    [`V1_WEBHOOK_RULES`]): the commands must split like a shell would.
//!
//! [`validate_value`] takes an untyped object (a manifest read by the CLI) and
//! runs the same checks for whichever version its `apiVersion` names.
//!
//! Layout: [`rules`] (the rules themselves, which [`crate::crd`] also reads),
//! `schema` (the OpenAPI schema checks, read from the CRD) and `decode` (the
//! typed decoding after them); this module runs them in that order.

mod decode;
pub mod rules;
mod schedule;
pub mod schedule_rules;
mod schema;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::api::schedule::LocustSchedule;
use crate::api::v1;
use crate::api::v2::LocustTest;
use crate::api::{KIND, SCHEDULE_API_VERSION, SCHEDULE_KIND};
use crate::conversion::{V1_API_VERSION, V2_API_VERSION};

pub use self::rules::{
    CelReason, MAX_TEST_NAME_LENGTH, RULES, Rule, V1_RULES, V1_WEBHOOK_RULES, WEBHOOK_RULES,
    WebhookRule, cel_rules_at, v1_cel_rules_at,
};
pub use self::schedule::validate_schedule;
use self::schema::{SchemaVersion, prune_nulls, schema_of, schema_violations};

/// Errors of this module. Validation itself never fails: it returns
/// [`Violation`]s. These describe why an object could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The object could not be serialized to JSON for the schema checks.
    #[error("cannot serialize the object for validation: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The CRD schema of a version could not be found.
    #[error("the CRD has no schema for version {0}")]
    MissingSchema(&'static str),
}

impl ValidationError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::Serialize(_) => "ValidationSerializeFailed",
            ValidationError::MissingSchema(_) => "ValidationSchemaMissing",
        }
    }
}

/// One reason an object is rejected. Displays as `<field>: <message>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Full path of the offending field, e.g. `spec.volumeMounts`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Id of the [`Rule`] or [`WebhookRule`] that failed; `None` for checks
    /// made by the OpenAPI schema itself.
    pub rule: Option<&'static str>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Violation {
    fn schema(field: String, message: String) -> Self {
        Self {
            field,
            message,
            rule: None,
        }
    }
}

/// Every violation of a v2 `LocustTest`, in a deterministic order: schema
/// checks, then [`RULES`], then [`WEBHOOK_RULES`].
pub fn validate(test: &LocustTest) -> Vec<Violation> {
    let mut out = typed_schema_violations(SchemaVersion::V2, test);
    out.extend(rule_violations(test, RULES, WEBHOOK_RULES));
    out
}

/// Every violation of a v1 `LocustTest` (name length, replica range, non-empty
/// image and command seeds, seeds that split like a shell would), in a
/// deterministic order: schema checks, then [`V1_RULES`], then [`V1_WEBHOOK_RULES`].
pub fn validate_v1(test: &v1::LocustTest) -> Vec<Violation> {
    let mut out = typed_schema_violations(SchemaVersion::V1, test);
    out.extend(rule_violations(test, V1_RULES, V1_WEBHOOK_RULES));
    out
}

/// Validate an untyped object, e.g. a manifest read by the CLI: checks
/// `apiVersion` and `kind` (a `LocustTest` of `locust.io/v2` or `v1`, or a
/// `LocustSchedule` of `locust.io/v1alpha1`), then the schema of that version
/// (required fields, types, enums, ranges, unknown fields), then — when the
/// schema checks pass — the CEL and webhook-only rules on the decoded object.
pub fn validate_value(value: &Value) -> Vec<Violation> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let (version, expected_kind) = match (api_version, kind) {
        (Some(SCHEDULE_API_VERSION), _) => (SchemaVersion::Schedule, SCHEDULE_KIND),
        (other, Some(SCHEDULE_KIND)) => {
            return vec![unsupported(
                "apiVersion",
                other.unwrap_or("<missing>"),
                &[SCHEDULE_API_VERSION],
            )];
        }
        (Some(V2_API_VERSION), _) => (SchemaVersion::V2, KIND),
        (Some(V1_API_VERSION), _) => (SchemaVersion::V1, KIND),
        (other, None | Some(KIND)) => {
            return vec![unsupported(
                "apiVersion",
                other.unwrap_or("<missing>"),
                &[V2_API_VERSION, V1_API_VERSION],
            )];
        }
        (_, Some(other)) => {
            return vec![Violation::schema(
                "kind".to_owned(),
                format!(
                    "Unsupported value: {other:?}: the operator serves {KIND} ({V2_API_VERSION}, {V1_API_VERSION}) and {SCHEDULE_KIND} ({SCHEDULE_API_VERSION})"
                ),
            )];
        }
    };
    let mut out = Vec::new();
    if kind != Some(expected_kind) {
        out.push(unsupported(
            "kind",
            kind.unwrap_or("<missing>"),
            &[expected_kind],
        ));
    }
    out.extend(schema_violations(version, value));
    let schema_failed = !out.is_empty();
    // Report the rules too whenever the object still decodes, so a user sees
    // every problem at once; a type error the schema already reported is not
    // repeated as a decoding error.
    match decode_and_check(version, value) {
        Ok(violations) => out.extend(violations),
        Err(_) if schema_failed => {}
        Err(violation) => out.push(violation),
    }
    out
}

/// `<field>: Unsupported value: "<got>": supported values: "<a>", "<b>"`.
fn unsupported(field: &str, got: &str, supported: &[&str]) -> Violation {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Violation::schema(
        field.to_owned(),
        format!(
            "Unsupported value: {got:?}: supported values: {}",
            supported.join(", ")
        ),
    )
}

/// What the validating webhook checks of the object in an admission request
/// for `api_version` `kind` (`locust.io/v2` LocustTest or `locust.io/v1alpha1`
/// LocustSchedule): [`validate_value`] (schema, every CEL rule and every
/// webhook-only rule, nulls pruned as the API server prunes them, decoding
/// errors naming the field), with the request's version and kind standing in
/// when the object omits them. The webhook and the CLI thus agree.
pub fn validate_admitted(value: &Value, api_version: &str, kind: &str) -> Vec<Violation> {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        for (key, default) in [("apiVersion", api_version), ("kind", kind)] {
            if map
                .get(key)
                .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
            {
                map.insert(key.to_owned(), Value::String(default.to_owned()));
            }
        }
    }
    validate_value(&value)
}

/// [`validate_admitted`] of a `locust.io/v2` LocustTest.
pub fn validate_admitted_v2(value: &Value) -> Vec<Violation> {
    validate_admitted(value, V2_API_VERSION, crate::api::KIND)
}

/// Decodes `value` like the API server would see it and runs the rules. Like
/// the API server, nulls the schema does not allow are dropped before decoding
/// (the typed defaults then stand in for the schema's).
fn decode_and_check(version: SchemaVersion, value: &Value) -> Result<Vec<Violation>, Violation> {
    let schema = schema_of(version);
    let mut pruned = value.clone();
    if let Some(schema) = schema {
        prune_nulls(schema, &mut pruned);
    }
    match version {
        SchemaVersion::V2 => decode::decode::<LocustTest>(schema, pruned)
            .map(|t| rule_violations(&t, RULES, WEBHOOK_RULES)),
        SchemaVersion::V1 => decode::decode::<v1::LocustTest>(schema, pruned)
            .map(|t| rule_violations(&t, V1_RULES, V1_WEBHOOK_RULES)),
        SchemaVersion::Schedule => {
            decode::decode::<LocustSchedule>(schema, pruned).map(|s| schedule::rule_violations(&s))
        }
    }
}

fn rule_violations<'a, T: 'static>(
    test: &T,
    rules: impl IntoIterator<Item = &'a Rule<T>>,
    webhook: impl IntoIterator<Item = &'a WebhookRule<T>>,
) -> Vec<Violation> {
    let cel = rules
        .into_iter()
        .filter(|r| !(r.check)(test))
        .map(|r| (r.id, r.field, r.message));
    let hooks = webhook
        .into_iter()
        .filter(|r| !(r.check)(test))
        .map(|r| (r.id, r.field, r.message));
    cel.chain(hooks)
        .map(|(id, field, message)| Violation {
            field: field.to_owned(),
            message: message.to_owned(),
            rule: Some(id),
        })
        .collect()
}

/// The schema checks of a typed object of `version`.
fn typed_schema_violations<T: Serialize>(version: SchemaVersion, object: &T) -> Vec<Violation> {
    match serde_json::to_value(object) {
        Ok(value) => schema_violations(version, &value),
        Err(err) => vec![internal_violation(&ValidationError::from(err))],
    }
}

fn internal_violation(err: &ValidationError) -> Violation {
    Violation::schema(String::new(), format!("{} ({})", err, err.reason()))
}
