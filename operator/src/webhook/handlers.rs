//! The webhook's two handlers, as pure functions from a request body to a
//! review: conversion (`ConversionReview`, apiextensions.k8s.io/v1) and
//! validation (`AdmissionReview`, admission.k8s.io/v1). The HTTP layer is in
//! the parent module.
//!
//! Validation rules, for `locust.io` `LocustTest` requests:
//! - CREATE of a v2 object: allowed iff [`validate_admitted_v2`] finds no
//!   violation (the CLI's checks less the schema, which the API server applies); a
//!   denial (code 422, reason `Invalid`) lists every violation as
//!   `field: message`, joined by `; `, with one status cause per violation;
//! - UPDATE with an unchanged spec (metadata-only, e.g. finalizer removal) or
//!   of an object being deleted: allowed without checks, so an object created
//!   under older rules can always be cleaned up;
//! - UPDATE with a changed spec: validated like CREATE, and when allowed it
//!   carries the warning [`IMMUTABLE_SPEC_WARNING`] (the operator ignores spec
//!   changes);
//! - a request for a v1 object (the webhook is registered for v2 only, so this
//!   means a misconfiguration): allowed with [`DEPRECATION_WARNING`]; a v2
//!   request that originated from a v1 call (`requestKind` v1, matchPolicy
//!   Equivalent) is validated and carries the same warning;
//! - DELETE and CONNECT: allowed;
//!
//! and for `LocustSchedule` requests (`v1alpha1`; schedules may change):
//! - CREATE, and UPDATE with a changed spec: allowed iff [`validate_admitted`]
//!   finds no violation (the schedule's rules, its cron expression and time
//!   zone, and every LocustTest rule on its template's spec);
//! - anything else: allowed;
//!
//! and any other group or kind: denied with code 400.

use std::sync::atomic::{AtomicBool, Ordering};

use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::response::{StatusCause, StatusDetails};
use kube::core::{DynamicObject, Status};
use serde_json::Value;
use tracing::{debug, warn};

use crate::api::{GROUP, KIND, SCHEDULE_API_VERSION, SCHEDULE_KIND};
use crate::conversion::{V1_API_VERSION, convert_value};
// The served versions: v2 is validated, v1 only warned about.
use crate::crd::{DEPRECATED_VERSION as V1, STORAGE_VERSION as V2};
use crate::validation::{Violation, validate_admitted, validate_admitted_v2};

/// Warning returned for requests about deprecated `locust.io/v1` objects.
pub use crate::api::v1::DEPRECATION_WARNING;
/// Warning returned when an UPDATE changes the spec of a test.
pub const IMMUTABLE_SPEC_WARNING: &str = "spec changes to a LocustTest are ignored: tests are immutable; delete and recreate it to apply them";

/// Errors that make a request unanswerable with a review (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The body is not JSON of the expected review type.
    #[error("request body is not a valid {kind}: {source}")]
    Malformed {
        /// `ConversionReview` or `AdmissionReview`.
        kind: &'static str,
        /// The JSON error (position and expectation, no content).
        #[source]
        source: serde_json::Error,
    },
    /// The review has no `request`.
    #[error("{kind} has no request")]
    MissingRequest {
        /// `ConversionReview` or `AdmissionReview`.
        kind: &'static str,
    },
}

impl HandlerError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            HandlerError::Malformed { .. } => "MalformedRequest",
            HandlerError::MissingRequest { .. } => "MissingRequest",
        }
    }
}

/// Logs the v1 deprecation at `warn` the first time, at `debug` afterwards.
fn log_v1_use(context: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.swap(true, Ordering::Relaxed) {
        debug!(context, "{DEPRECATION_WARNING}");
    } else {
        warn!(
            context,
            "{DEPRECATION_WARNING} (logged once; further uses at debug level)"
        );
    }
}

fn object_ref(obj: &Value) -> String {
    let meta = obj.get("metadata");
    let field = |name: &str| {
        meta.and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    match (field("namespace"), field("name")) {
        ("", name) => name.to_owned(),
        (ns, name) => format!("{ns}/{name}"),
    }
}

/// Handles a `ConversionReview` body: converts every object to
/// `request.desiredAPIVersion`. The response echoes the uid and the review's
/// apiVersion; the first object that cannot be converted makes the result a
/// `Failure` naming it.
pub fn convert_review(body: &[u8]) -> Result<ConversionReview, HandlerError> {
    let review: ConversionReview =
        serde_json::from_slice(body).map_err(|source| HandlerError::Malformed {
            kind: "ConversionReview",
            source,
        })?;
    let request =
        ConversionRequest::from_review(review).map_err(|_| HandlerError::MissingRequest {
            kind: "ConversionReview",
        })?;
    let desired = request.desired_api_version.clone();
    let objects = request.objects.clone();
    let response = ConversionResponse::for_request(request);

    let touches_v1 = desired == V1_API_VERSION
        || objects
            .iter()
            .any(|o| o.get("apiVersion").and_then(Value::as_str) == Some(V1_API_VERSION));
    if touches_v1 {
        log_v1_use("conversion webhook");
    }

    let mut converted = Vec::with_capacity(objects.len());
    for (index, obj) in objects.into_iter().enumerate() {
        let name = object_ref(&obj);
        match convert_value(obj, &desired) {
            Ok(value) => converted.push(value),
            Err(err) => {
                let message = format!("converting object {index} ({name}) to {desired}: {err}");
                debug!(%message, reason = err.reason(), "conversion failed");
                return Ok(response
                    .failure(Status::failure(&message, err.reason()))
                    .into_review());
            }
        }
    }
    Ok(response.success(converted).into_review())
}

/// Handles an `AdmissionReview` body (see the module docs for the rules).
pub fn admission_review(body: &[u8]) -> Result<AdmissionReview<DynamicObject>, HandlerError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|source| HandlerError::Malformed {
            kind: "AdmissionReview",
            source,
        })?;
    let mut request: AdmissionRequest<DynamicObject> =
        review
            .try_into()
            .map_err(|_| HandlerError::MissingRequest {
                kind: "AdmissionReview",
            })?;
    if request.types.api_version.is_empty() {
        request.types.api_version = META_API_VERSION_V1.to_owned();
    }
    if request.types.kind.is_empty() {
        request.types.kind = META_KIND.to_owned();
    }
    Ok(admit(&request).into_review())
}

fn add_warning(resp: &mut AdmissionResponse, warning: &str) {
    resp.warnings
        .get_or_insert_with(Vec::new)
        .push(warning.to_owned());
}

fn deny(mut resp: AdmissionResponse, status: Status) -> AdmissionResponse {
    resp.allowed = false;
    resp.result = status;
    resp
}

fn bad_request(resp: AdmissionResponse, message: String) -> AdmissionResponse {
    deny(resp, Status::failure(&message, "BadRequest").with_code(400))
}

/// The denial for a non-empty list of violations: code 422, reason
/// `Invalid`, message `field: message; field: message`, one cause each.
pub fn invalid_status(name: &str, violations: &[Violation]) -> Status {
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let causes = violations
        .iter()
        .map(|v| StatusCause {
            reason: "FieldValueInvalid".to_owned(),
            message: v.message.clone(),
            field: v.field.clone(),
        })
        .collect();
    Status::failure(&message, "Invalid")
        .with_code(422)
        .with_details(StatusDetails {
            name: name.to_owned(),
            group: GROUP.to_owned(),
            kind: KIND.to_owned(),
            uid: String::new(),
            causes,
            retry_after_seconds: 0,
        })
}

/// Decides one admission request (see the module docs).
pub fn admit(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req);
    if req.kind.group == GROUP && req.kind.kind == SCHEDULE_KIND {
        return admit_schedule(req, resp);
    }
    if req.kind.group != GROUP || req.kind.kind != KIND {
        return bad_request(
            resp,
            format!(
                "this webhook validates {GROUP} {KIND} and {SCHEDULE_KIND} only, got {}/{} {}",
                req.kind.group, req.kind.version, req.kind.kind
            ),
        );
    }
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return resp;
    }
    match req.kind.version.as_str() {
        V2 => {}
        V1 => {
            log_v1_use("validating webhook");
            add_warning(&mut resp, DEPRECATION_WARNING);
            return resp;
        }
        other => {
            return bad_request(resp, format!("unsupported {GROUP} version {other:?}"));
        }
    }
    if req
        .request_kind
        .as_ref()
        .is_some_and(|k| k.group == GROUP && k.version == V1)
    {
        log_v1_use("validating webhook");
        add_warning(&mut resp, DEPRECATION_WARNING);
    }
    let Some(object) = req.object.as_ref() else {
        return bad_request(
            resp,
            format!("{:?} request without an object", req.operation),
        );
    };
    if object.metadata.deletion_timestamp.is_some() {
        return resp;
    }
    let spec_changed = match (&req.operation, &req.old_object) {
        (Operation::Update, Some(old)) => old.data.get("spec") != object.data.get("spec"),
        (Operation::Update, None) => true,
        _ => false,
    };
    if req.operation == Operation::Update && !spec_changed {
        return resp;
    }

    let value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(err) => {
            let message = format!("object is not a valid {GROUP}/{V2} {KIND}: {err}");
            return deny(resp, Status::failure(&message, "Invalid").with_code(422));
        }
    };
    // Decoded as the CLI and the API server see it: nulls pruned, errors naming
    // the field.
    let violations = validate_admitted_v2(&value);
    if !violations.is_empty() {
        return deny(
            resp,
            invalid_status(&request_name(req, object), &violations),
        );
    }
    if spec_changed {
        add_warning(&mut resp, IMMUTABLE_SPEC_WARNING);
    }
    resp
}

/// The name of the object a request is about.
fn request_name(req: &AdmissionRequest<DynamicObject>, object: &DynamicObject) -> String {
    if req.name.is_empty() {
        object.metadata.name.clone().unwrap_or_default()
    } else {
        req.name.clone()
    }
}

/// Decides a LocustSchedule request (see the module docs).
fn admit_schedule(
    req: &AdmissionRequest<DynamicObject>,
    resp: AdmissionResponse,
) -> AdmissionResponse {
    let version = SCHEDULE_API_VERSION.rsplit('/').next().unwrap_or_default();
    if req.kind.version != version {
        let got = &req.kind.version;
        return bad_request(
            resp,
            format!("unsupported {GROUP} {SCHEDULE_KIND} version {got:?}"),
        );
    }
    let Some(object) = req.object.as_ref() else {
        return resp;
    };
    let spec_changed = match &req.old_object {
        Some(old) => old.data.get("spec") != object.data.get("spec"),
        None => true,
    };
    let checked = matches!(req.operation, Operation::Create)
        || (req.operation == Operation::Update && spec_changed);
    if !checked || object.metadata.deletion_timestamp.is_some() {
        return resp;
    }
    let violations = match serde_json::to_value(object) {
        Ok(value) => validate_admitted(&value, SCHEDULE_API_VERSION, SCHEDULE_KIND),
        Err(err) => {
            let message =
                format!("object is not a valid {SCHEDULE_API_VERSION} {SCHEDULE_KIND}: {err}");
            return deny(resp, Status::failure(&message, "Invalid").with_code(422));
        }
    };
    if violations.is_empty() {
        resp
    } else {
        deny(
            resp,
            invalid_status(&request_name(req, object), &violations),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v2_object(replicas: i64) -> Value {
        json!({
            "apiVersion": "locust.io/v2",
            "kind": "LocustTest",
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "image": "locustio/locust:2.43.1",
                "master": {"command": "--locustfile /lotest/src/locustfile.py"},
                "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": replicas}
            }
        })
    }

    fn request(
        group: &str,
        version: &str,
        operation: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": group, "version": version, "kind": "LocustTest"},
                "resource": {"group": group, "version": version, "resource": "locusttests"},
                "name": "demo",
                "namespace": "ns",
                "operation": operation,
                "userInfo": {},
                "object": object,
                "oldObject": old
            }
        });
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).unwrap();
        review.try_into().unwrap()
    }

    /// A LocustSchedule request: the sample schedule with `schedule`.
    fn schedule_request(
        operation: &str,
        schedule: &str,
        old: Option<&str>,
    ) -> AdmissionRequest<DynamicObject> {
        let object = |cron: &str| {
            json!({
                "apiVersion": SCHEDULE_API_VERSION,
                "kind": SCHEDULE_KIND,
                "metadata": {"name": "nightly", "namespace": "ns"},
                "spec": {"schedule": cron, "template": {"spec": v2_object(1)["spec"].clone()}}
            })
        };
        let mut review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": GROUP, "version": "v1alpha1", "kind": SCHEDULE_KIND},
                "resource": {"group": GROUP, "version": "v1alpha1", "resource": "locustschedules"},
                "name": "nightly",
                "namespace": "ns",
                "operation": operation,
                "userInfo": {},
                "object": object(schedule),
            }
        });
        if let Some(old) = old {
            review["request"]["oldObject"] = object(old);
        }
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).unwrap();
        review.try_into().unwrap()
    }

    #[test]
    fn schedules_are_validated_on_create_and_on_spec_changes() {
        let ok = admit(&schedule_request("CREATE", "30 2 * * 1-5", None));
        assert!(ok.allowed, "{}", ok.result.message);
        assert!(ok.warnings.is_none(), "schedules may change: no warning");
        let bad = admit(&schedule_request("CREATE", "61 * * * *", None));
        assert!(!bad.allowed);
        assert_eq!(bad.result.code, 422);
        assert!(
            bad.result.message.contains(
                "spec.schedule: not a valid cron schedule: minute: 61 is out of range 0-59"
            ),
            "{}",
            bad.result.message
        );
        let changed = admit(&schedule_request("UPDATE", "61 * * * *", Some("@daily")));
        assert!(!changed.allowed);
        // An update that leaves the spec alone (a run-now annotation, say) is
        // not checked again: an object admitted under older rules stays editable.
        let unchanged = admit(&schedule_request(
            "UPDATE",
            "61 * * * *",
            Some("61 * * * *"),
        ));
        assert!(unchanged.allowed);
    }

    #[test]
    fn other_groups_are_denied_as_bad_requests() {
        let resp = admit(&request(
            "example.com",
            "v2",
            "CREATE",
            Some(v2_object(1)),
            None,
        ));
        assert!(!resp.allowed);
        assert_eq!(resp.result.code, 400);
        assert!(
            resp.result.message.contains("example.com/v2"),
            "{}",
            resp.result.message
        );
    }

    #[test]
    fn delete_and_objects_being_deleted_are_allowed_unchecked() {
        let resp = admit(&request(GROUP, V2, "DELETE", None, Some(v2_object(0))));
        assert!(resp.allowed);
        let mut deleting = v2_object(0);
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let resp = admit(&request(
            GROUP,
            V2,
            "UPDATE",
            Some(deleting),
            Some(v2_object(1)),
        ));
        assert!(resp.allowed, "{:?}", resp.result);
        assert_eq!(resp.warnings, None);
    }

    #[test]
    fn update_with_unchanged_spec_skips_validation() {
        // An object stored under older rules can still have its finalizers removed.
        let resp = admit(&request(
            GROUP,
            V2,
            "UPDATE",
            Some(v2_object(0)),
            Some(v2_object(0)),
        ));
        assert!(resp.allowed);
        assert_eq!(resp.warnings, None);
    }

    #[test]
    fn update_without_old_object_counts_as_a_spec_change() {
        let resp = admit(&request(GROUP, V2, "UPDATE", Some(v2_object(2)), None));
        assert!(resp.allowed);
        assert_eq!(resp.warnings, Some(vec![IMMUTABLE_SPEC_WARNING.to_owned()]));
        let resp = admit(&request(GROUP, V2, "UPDATE", Some(v2_object(0)), None));
        assert!(!resp.allowed);
        assert_eq!(resp.result.code, 422);
    }

    #[test]
    fn request_from_a_v1_call_is_validated_and_warned() {
        let mut req = request(GROUP, V2, "CREATE", Some(v2_object(2)), None);
        req.request_kind = Some(kube::core::GroupVersionKind::gvk(GROUP, V1, KIND));
        let resp = admit(&req);
        assert!(resp.allowed);
        assert_eq!(resp.warnings, Some(vec![DEPRECATION_WARNING.to_owned()]));

        let mut req = request(GROUP, V2, "CREATE", Some(v2_object(0)), None);
        req.request_kind = Some(kube::core::GroupVersionKind::gvk(GROUP, V1, KIND));
        let resp = admit(&req);
        assert!(!resp.allowed);
        assert_eq!(resp.warnings, Some(vec![DEPRECATION_WARNING.to_owned()]));
    }

    #[test]
    fn undecodable_object_is_denied_without_panicking() {
        let mut obj = v2_object(1);
        obj["spec"]["worker"]["replicas"] = json!("many");
        let resp = admit(&request(GROUP, V2, "CREATE", Some(obj), None));
        assert!(!resp.allowed);
        assert_eq!(resp.result.code, 422);
        let resp = admit(&request(GROUP, V2, "CREATE", None, None));
        assert!(!resp.allowed);
        assert_eq!(resp.result.code, 400);
    }

    #[test]
    fn review_errors_have_reasons() {
        let err = convert_review(b"[]").unwrap_err();
        assert_eq!(err.reason(), "MalformedRequest");
        let err =
            admission_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .unwrap_err();
        assert_eq!(err.reason(), "MissingRequest");
    }

    #[test]
    fn empty_conversion_succeeds() {
        let body = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "x", "desiredAPIVersion": "locust.io/v1", "objects": []}
        });
        let review = convert_review(body.to_string().as_bytes()).unwrap();
        let resp = review.response.unwrap();
        assert_eq!(resp.uid, "x");
        assert!(resp.result.is_success());
        assert_eq!(review.types.api_version, "apiextensions.k8s.io/v1");
    }
}
