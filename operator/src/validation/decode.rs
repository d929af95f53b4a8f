//! Decoding an object that passed the schema checks into its typed form,
//! with a failure reported as a [`Violation`] naming the field the way the
//! schema checks name theirs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

use super::Violation;

/// Decodes an object that passed the schema checks. What can still fail lies
/// outside the CRD schema (`metadata`, which the API server checks itself) or
/// beyond it (a number out of the typed range, a malformed timestamp); the
/// violation names the offending field, e.g. `metadata: Required value` for an
/// empty `metadata:` in a manifest.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    schema: Option<&JSONSchemaProps>,
    value: Value,
) -> Result<T, Violation> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = field_path(schema, err.path());
        let message = err.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'));
        match (path.as_str(), missing) {
            (".", Some(name)) => Violation::schema(name.to_owned(), "Required value".to_owned()),
            (path, Some(name)) => {
                Violation::schema(format!("{path}.{name}"), "Required value".to_owned())
            }
            (".", None) => Violation::schema(
                String::new(),
                format!("cannot decode the object: {message}"),
            ),
            (path, None) => Violation::schema(
                path.to_owned(),
                format!("cannot decode the object: {message}"),
            ),
        }
    })
}

/// A decoding error's path written as the schema checks write theirs:
/// `.name` for a property, `[key]` for a map key (`metadata.labels[a.b/c]`),
/// `[0]` for an item; `.` for the root. `serde_path_to_error` alone cannot
/// tell a property from a map key, so the schema decides where it knows the
/// node; elsewhere (metadata, which the CRD schema leaves to the API server)
/// a key that is not a plain identifier is taken as a map key.
fn field_path(schema: Option<&JSONSchemaProps>, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut node = schema;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                node = node.and_then(|n| match n.items.as_ref() {
                    Some(JSONSchemaPropsOrArray::Schema(items)) => Some(items.as_ref()),
                    _ => None,
                });
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let property = node.and_then(|n| n.properties.as_ref()?.get(key.as_str()));
                let map_values = node.and_then(|n| match n.additional_properties.as_ref() {
                    Some(JSONSchemaPropsOrBool::Schema(values)) => Some(values.as_ref()),
                    _ => None,
                });
                let identifier = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if property.is_some() || (map_values.is_none() && identifier) {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                    node = property;
                } else {
                    out.push_str(&format!("[{key}]"));
                    node = map_values;
                }
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
                node = None;
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}
