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
mod schema;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::api::v1;
use crate::api::v2::LocustTest;
use crate::conversion::{V1_API_VERSION, V2_API_VERSION};

pub use self::rules::{
    CelReason, MAX_TEST_NAME_LENGTH, RULES, Rule, V1_RULES, V1_WEBHOOK_RULES, WEBHOOK_RULES,
    WebhookRule, cel_rules_at, v1_cel_rules_at,
};
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
    let mut out = match serde_json::to_value(test) {
        Ok(value) => schema_violations(SchemaVersion::V2, &value),
        Err(err) => vec![internal_violation(&ValidationError::from(err))],
    };
    out.extend(rule_violations(test, RULES, WEBHOOK_RULES));
    out
}

/// Every violation of a v1 `LocustTest` (name length, replica range, non-empty
/// image and command seeds, seeds that split like a shell would), in a
/// deterministic order: schema checks, then [`V1_RULES`], then [`V1_WEBHOOK_RULES`].
pub fn validate_v1(test: &v1::LocustTest) -> Vec<Violation> {
    let mut out = match serde_json::to_value(test) {
        Ok(value) => schema_violations(SchemaVersion::V1, &value),
        Err(err) => vec![internal_violation(&ValidationError::from(err))],
    };
    out.extend(rule_violations(test, V1_RULES, V1_WEBHOOK_RULES));
    out
}

/// Validate an untyped object, e.g. a manifest read by the CLI: checks
/// `apiVersion` and `kind`, then the schema of that version (required fields,
/// types, enums, ranges, unknown fields), then — when the schema checks pass —
/// the CEL and webhook-only rules on the decoded object.
pub fn validate_value(value: &Value) -> Vec<Violation> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let version = match api_version {
        Some(V2_API_VERSION) => SchemaVersion::V2,
        Some(V1_API_VERSION) => SchemaVersion::V1,
        other => {
            let got = other.map_or_else(|| "<missing>".to_owned(), str::to_owned);
            return vec![Violation::schema(
                "apiVersion".to_owned(),
                format!(
                    "Unsupported value: {got:?}: supported values: \"locust.io/v2\", \"locust.io/v1\""
                ),
            )];
        }
    };
    let mut out = Vec::new();
    match value.get("kind").and_then(Value::as_str) {
        Some(crate::api::KIND) => {}
        other => out.push(Violation::schema(
            "kind".to_owned(),
            format!(
                "Unsupported value: {:?}: supported values: \"{}\"",
                other.unwrap_or("<missing>"),
                crate::api::KIND
            ),
        )),
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

/// What the validating webhook checks of the object in a `locust.io/v2`
/// admission request: [`validate_value`] (schema, every CEL rule and every
/// webhook-only rule, nulls pruned as the API server prunes them, decoding
/// errors naming the field), with the request's version and kind standing in
/// when the object omits them. The webhook and the CLI thus agree.
pub fn validate_admitted_v2(value: &Value) -> Vec<Violation> {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        for (key, default) in [("apiVersion", V2_API_VERSION), ("kind", crate::api::KIND)] {
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
    }
}

fn rule_violations<T>(test: &T, rules: &[Rule<T>], webhook: &[WebhookRule<T>]) -> Vec<Violation> {
    let cel = rules
        .iter()
        .filter(|r| !(r.check)(test))
        .map(|r| (r.id, r.field, r.message));
    let hooks = webhook
        .iter()
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

fn internal_violation(err: &ValidationError) -> Violation {
    Violation::schema(String::new(), format!("{} ({})", err, err.reason()))
}
