//! Untrusted input as the API server makes it, and checks every answer to
//! untrusted input must pass. Shared, as a module of each, by the property
//! tests (`tests/properties`) and the fuzz targets (`fuzz/src/lib.rs`), which
//! search the same inputs in two ways; the checks panic, which both report as
//! a failing case.

use locust_operator::api::{v1, v2};
use locust_operator::conversion::{ConversionError, V1_API_VERSION};
use serde_json::{Value, json};

/// The uid, name and namespace the API server gives an object (it rejects or
/// generates a missing name), so that it can be built into children.
pub fn with_identity(mut value: Value) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert("name".into(), json!("t"));
        }
        meta.insert("namespace".into(), json!("load"));
        meta.insert("uid".into(), json!("0b0e5c1e-1f33-4c38-9a51-6c2f5f0d0001"));
    }
    value
}

/// The object as the API server stores it, for decoding: fields set to `null`
/// are dropped when not nullable (as `validate_value` mirrors) and decode as
/// absent when nullable.
pub fn without_null_fields(mut value: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// Kubernetes does not tell an empty annotation map from none (JSON
/// `omitempty`), and a trip through the v2-spec annotation drops it (see
/// `tests/conversion/round_trips.rs`).
pub fn without_empty_annotations(mut value: Value) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("annotations") == Some(&json!({}))
    {
        meta.remove("annotations");
    }
    value
}

/// `value` decoded as the type of its `apiVersion` (v1, else v2) and encoded
/// again: what a lossless conversion round trip gives back.
pub fn canonical(value: &Value) -> serde_json::Result<Value> {
    if value["apiVersion"] == V1_API_VERSION {
        serde_json::from_value::<v1::LocustTest>(value.clone()).and_then(serde_json::to_value)
    } else {
        serde_json::from_value::<v2::LocustTest>(value.clone()).and_then(serde_json::to_value)
    }
}

/// An `AdmissionReview` request of `operation` on the LocustTest `object`
/// (`old`: the stored one, for an UPDATE), as the API server sends it.
pub fn admission_body(object: &Value, operation: &str, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "locust.io", "version": "v2", "kind": "LocustTest"},
            "resource": {"group": "locust.io", "version": "v2", "resource": "locusttests"},
            "name": object["metadata"]["name"].as_str().unwrap_or_default(),
            "namespace": "load",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
        }
    })
}

/// A conversion error has a reason and a message, and a rejected object's
/// names the field (or the message names the missing root field).
pub fn check_conversion_error(err: &ConversionError) {
    assert!(!err.reason().is_empty());
    assert!(!err.to_string().trim().is_empty());
    if let ConversionError::InvalidObject { field, message, .. } = err {
        assert!(
            field.is_some() || message.contains("missing field"),
            "no field named: {err}"
        );
        assert!(!message.trim().is_empty(), "a blank message: {err}");
    }
}
