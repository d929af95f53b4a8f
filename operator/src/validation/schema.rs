//! The checks the CRD's OpenAPI schema makes (required fields, types, enums,
//! `minimum`/`maximum`, `maxItems`/`maxLength`, unknown fields), read from the
//! generated CRD ([`crate::crd::crd`]) itself so they can never drift from it,
//! and the API server's pruning of `null`s before validation.

use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

use super::{ValidationError, Violation, internal_violation};

#[derive(Clone, Copy, Debug)]
pub(super) enum SchemaVersion {
    V2,
    V1,
    /// `locust.io/v1alpha1` `LocustSchedule`.
    Schedule,
}

impl SchemaVersion {
    fn name(self) -> &'static str {
        match self {
            SchemaVersion::V2 => "v2",
            SchemaVersion::V1 => "v1",
            SchemaVersion::Schedule => crate::crd::SCHEDULE_VERSION,
        }
    }
}

/// The CRDs' schemas, generated once.
static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    let crd = crate::crd::crd();
    let find = |name: &str| crate::crd::version_schema(&crd, name).cloned();
    let schedule = crate::crd::schedule_crd();
    Schemas {
        v2: find(SchemaVersion::V2.name()),
        v1: find(SchemaVersion::V1.name()),
        schedule: crate::crd::version_schema(&schedule, SchemaVersion::Schedule.name()).cloned(),
    }
});

struct Schemas {
    v2: Option<JSONSchemaProps>,
    v1: Option<JSONSchemaProps>,
    schedule: Option<JSONSchemaProps>,
}

pub(super) fn schema_of(version: SchemaVersion) -> Option<&'static JSONSchemaProps> {
    match version {
        SchemaVersion::V2 => SCHEMAS.v2.as_ref(),
        SchemaVersion::V1 => SCHEMAS.v1.as_ref(),
        SchemaVersion::Schedule => SCHEMAS.schedule.as_ref(),
    }
}

/// Removes the `null`s the schema does not declare `nullable`, as the API
/// server's pruning does before defaulting and validation.
pub(super) fn prune_nulls(schema: &JSONSchemaProps, value: &mut Value) {
    let nullable = |s: &JSONSchemaProps| s.nullable == Some(true);
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.properties.as_ref() {
                map.retain(|key, v| {
                    !(v.is_null() && properties.get(key).is_some_and(|p| !nullable(p)))
                });
                for (key, v) in map.iter_mut() {
                    if let Some(p) = properties.get(key) {
                        prune_nulls(p, v);
                    }
                }
            } else if let Some(JSONSchemaPropsOrBool::Schema(values)) =
                schema.additional_properties.as_ref()
            {
                map.retain(|_, v| !v.is_null() || nullable(values));
                for v in map.values_mut() {
                    prune_nulls(values, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = schema.items.as_ref() {
                for v in items {
                    prune_nulls(item, v);
                }
            }
        }
        _ => {}
    }
}

pub(super) fn schema_violations(version: SchemaVersion, value: &Value) -> Vec<Violation> {
    let Some(schema) = schema_of(version) else {
        return vec![internal_violation(&ValidationError::MissingSchema(
            version.name(),
        ))];
    };
    let mut out = Vec::new();
    check_object(schema, value, "", true, &mut out);
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Integers as the API server sees them: any JSON number with no fraction.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => matches!(value, Value::Number(n) if is_integer(n)),
        _ => true,
    }
}

/// A JSON number as a float64 reads it (as the API server's schema checks
/// do), written like [`fmt_bound`]: `-1` whether it arrived as the integer `-1`
/// or the float `-1.0` (a typed object serialises its `f64` fields with a
/// fraction), and the same digits for an integer beyond 2^53 either way.
fn fmt_number(n: &serde_json::Number) -> String {
    n.as_f64().map_or_else(|| n.to_string(), fmt_bound)
}

/// A number formatted like the schema writes it (`1`, not `1.0`).
fn fmt_bound(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e15 {
        format!("{}", bound as i64)
    } else {
        format!("{bound}")
    }
}

fn check_value(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if value.is_null() {
        // Null is either allowed (nullable) or pruned by the API server before
        // validation; the parent object reports a missing required field.
        return;
    }
    if schema.x_kubernetes_int_or_string == Some(true) {
        let ok = value.is_string() || matches!(value, Value::Number(n) if is_integer(n));
        if !ok {
            out.push(Violation::schema(
                path.to_owned(),
                format!(
                    "must be an integer or a string, got {}",
                    json_type_name(value)
                ),
            ));
        }
        return;
    }
    if let Some(expected) = schema
        .type_
        .as_deref()
        .filter(|expected| !type_matches(expected, value))
    {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must be of type {expected}, got {}", json_type_name(value)),
        ));
        return;
    }
    check_enum(schema, value, path, out);
    match value {
        Value::Number(n) => check_number(schema, n, path, out),
        Value::String(s) => check_string(schema, s, path, out),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::Object(_) => check_object(schema, value, path, false, out),
        Value::Bool(_) | Value::Null => {}
    }
}

fn check_enum(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(allowed) = schema.enum_.as_ref() else {
        return;
    };
    if allowed.iter().any(|a| &a.0 == value) {
        return;
    }
    let supported: Vec<String> = allowed
        .iter()
        .filter(|a| !a.0.is_null())
        .map(|a| a.0.to_string())
        .collect();
    out.push(Violation::schema(
        path.to_owned(),
        format!(
            "Unsupported value: {value}: supported values: {}",
            supported.join(", ")
        ),
    ));
}

fn check_number(
    schema: &JSONSchemaProps,
    n: &serde_json::Number,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let Some(x) = n.as_f64() else {
        return;
    };
    let excl_min = schema.exclusive_minimum == Some(true);
    let excl_max = schema.exclusive_maximum == Some(true);
    let below = schema
        .minimum
        .is_some_and(|min| if excl_min { x <= min } else { x < min });
    let above = schema
        .maximum
        .is_some_and(|max| if excl_max { x >= max } else { x > max });
    if !below && !above {
        return;
    }
    let message = match (schema.minimum, schema.maximum) {
        (Some(min), Some(max)) if !excl_min && !excl_max => {
            format!(
                "must be between {} and {}, got {}",
                fmt_bound(min),
                fmt_bound(max),
                fmt_number(n)
            )
        }
        (Some(min), _) if below => {
            let op = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            format!("must be {op} {}, got {}", fmt_bound(min), fmt_number(n))
        }
        (_, Some(max)) => {
            let op = if excl_max {
                "less than"
            } else {
                "less than or equal to"
            };
            format!("must be {op} {}, got {}", fmt_bound(max), fmt_number(n))
        }
        _ => format!("is out of range, got {}", fmt_number(n)),
    };
    out.push(Violation::schema(path.to_owned(), message));
}

fn check_string(schema: &JSONSchemaProps, s: &str, path: &str, out: &mut Vec<Violation>) {
    let bounds = (schema.min_length, schema.max_length);
    let len = s.chars().count();
    check_count(len, bounds, "be", "characters long", path, out);
}

fn check_array(schema: &JSONSchemaProps, items: &[Value], path: &str, out: &mut Vec<Violation>) {
    let bounds = (schema.min_items, schema.max_items);
    check_count(items.len(), bounds, "have", "items", path, out);
    if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = schema.items.as_ref() {
        for (i, item) in items.iter().enumerate() {
            check_value(item_schema, item, &format!("{path}[{i}]"), out);
        }
    }
}

/// Reports `len` above `max` or below `min` as "must {verb} at most {max}
/// {unit}, got {len}" (or "at least {min}").
fn check_count(
    len: usize,
    (min, max): (Option<i64>, Option<i64>),
    verb: &str,
    unit: &str,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let len_i64 = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(max) = max.filter(|max| len_i64 > *max) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must {verb} at most {max} {unit}, got {len}"),
        ));
    }
    if let Some(min) = min.filter(|min| len_i64 < *min) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must {verb} at least {min} {unit}, got {len}"),
        ));
    }
}

/// Fields every object has at the root, outside the CRD's own schema.
const IMPLICIT_ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn check_object(
    schema: &JSONSchemaProps,
    value: &Value,
    path: &str,
    root: bool,
    out: &mut Vec<Violation>,
) {
    let Some(map) = value.as_object() else {
        return;
    };
    let properties = schema.properties.as_ref();
    let present = |name: &str| -> bool {
        match map.get(name) {
            None => false,
            Some(Value::Null) => properties
                .and_then(|p| p.get(name))
                .is_some_and(|p| p.nullable == Some(true)),
            Some(_) => true,
        }
    };
    for name in schema.required.iter().flatten() {
        if !present(name) {
            out.push(Violation::schema(
                child(path, name),
                "Required value".to_owned(),
            ));
        }
    }
    if let Some(properties) = properties {
        for (name, prop_schema) in properties {
            if root && IMPLICIT_ROOT_FIELDS.contains(&name.as_str()) {
                continue;
            }
            if let Some(v) = map.get(name) {
                check_value(prop_schema, v, &child(path, name), out);
            }
        }
    }
    let additional = match schema.additional_properties.as_ref() {
        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_ref()),
        _ => None,
    };
    if let Some(additional) = additional {
        for (key, v) in map {
            if properties.is_some_and(|p| p.contains_key(key)) {
                continue;
            }
            check_value(additional, v, &format!("{path}[{key}]"), out);
        }
        return;
    }
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true)
        || matches!(
            schema.additional_properties,
            Some(JSONSchemaPropsOrBool::Bool(true))
        );
    if preserve {
        return;
    }
    let mut unknown: Vec<&String> = map
        .keys()
        .filter(|k| !properties.is_some_and(|p| p.contains_key(k.as_str())))
        .filter(|k| !(root && IMPLICIT_ROOT_FIELDS.contains(&k.as_str())))
        .collect();
    unknown.sort();
    for key in unknown {
        out.push(Violation::schema(
            child(path, key),
            "unknown field; remove it or correct its spelling".to_owned(),
        ));
    }
}
