//! The checks of the operator's fuzz targets, one function per target. Each
//! takes the raw bytes libFuzzer generates and panics (a crash, for libFuzzer)
//! when the operator panics or a property fails:
//!
//! - [`conversion`]: v1 ↔ v2 conversion round trips losslessly whatever parses;
//! - [`validation`]: every violation has a field and a message; an accepted
//!   object can be built into the master/worker Jobs and Service;
//! - [`command_split`]: splitting, the shell-syntax rule and the container
//!   command agree, and accepted commands are closed;
//! - [`stats_parser`]: the Locust statistics parsers return finite numbers;
//! - [`admission_review`] and [`conversion_review`]: the webhook handlers
//!   answer every request they can read, echoing its uid.
//!
//! Inputs that are documents are read as JSON, or else as YAML (the seeds are
//! the repository's YAML samples and corpus, and the CLI reads YAML).

#[path = "../../tests/support/untrusted.rs"]
mod untrusted;

use locust_operator::api::{v1, v2};
use locust_operator::config::OperatorConfig;
use locust_operator::conversion::{
    V1_API_VERSION, V2_API_VERSION, V2_SPEC_ANNOTATION, convert_value_with_warnings, v1_to_v2,
    v2_to_v1,
};
use locust_operator::resources::command::{
    CommandError, MASTER_COMMAND_FIELD, WORKER_COMMAND_FIELD,
};
use locust_operator::resources::{
    ContainerCommand, build_children, master_args, master_container_command, split_command,
    worker_args,
};
use locust_operator::stats::{self, MasterStats, RowStats};
use locust_operator::validation::{Violation, validate, validate_value};
use locust_operator::webhook::handlers::{self, HandlerError};
use locust_operator::yaml;
use serde_json::{Value, json};
use untrusted::{
    admission_body, canonical, check_conversion_error, with_identity, without_empty_annotations,
    without_null_fields,
};

/// The message of a violation for a field the schema does not have.
const UNKNOWN_FIELD: &str = "unknown field";

/// Root fields a violation may name.
const ROOTS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// `data` as a JSON document, or else as a YAML one.
pub fn document(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data)
        .ok()
        .or_else(|| yaml::from_str(std::str::from_utf8(data).ok()?).ok())
}

fn has_spec_annotation(value: &Value) -> bool {
    value["metadata"]["annotations"]
        .get(V2_SPEC_ANNOTATION)
        .is_some()
}

fn check_violation(v: &Violation) {
    assert!(!v.message.trim().is_empty(), "blank message: {v:?}");
    let unknown = v.message.starts_with(UNKNOWN_FIELD);
    // A violation names a field under the object's root fields; only an
    // unknown field can be named anything (even "", a key written as "").
    let root = v.field.split(['.', '[']).next().unwrap_or_default();
    assert!(unknown || ROOTS.contains(&root), "no field named: {v:?}");
}

/// Fuzz target `conversion`: any document converts to both versions or is
/// rejected naming a field; what converts comes back as its canonical form
/// (decoded and re-encoded), and the typed round trips are the identity.
pub fn conversion(data: &[u8]) {
    let Some(value) = document(data) else {
        return;
    };
    let annotated = has_spec_annotation(&value);
    for desired in [V1_API_VERSION, V2_API_VERSION] {
        let there = match convert_value_with_warnings(value.clone(), desired) {
            Ok(there) => there,
            Err(err) => {
                check_conversion_error(&err);
                continue;
            }
        };
        let source = value["apiVersion"].as_str().unwrap_or_default();
        let back = convert_value_with_warnings(there.object, source)
            .unwrap_or_else(|err| panic!("converted to {desired} but not back: {err}"));
        if source == desired || annotated {
            continue;
        }
        assert!(there.warnings.is_empty(), "{:?}", there.warnings);
        let canonical =
            canonical(&value).unwrap_or_else(|err| panic!("converted but undecodable: {err}"));
        assert_eq!(
            without_empty_annotations(back.object),
            without_empty_annotations(canonical),
            "{source} -> {desired} -> {source} is not the identity"
        );
    }
    if annotated {
        return;
    }
    let normal = |mut m: v2::LocustTest| {
        m.metadata.annotations = m.metadata.annotations.filter(|a| !a.is_empty());
        m
    };
    if let Ok(obj) = serde_json::from_value::<v2::LocustTest>(value.clone()) {
        let back = v1_to_v2(&v2_to_v1(&obj).object).object;
        assert_eq!(normal(back), normal(obj), "typed v2 -> v1 -> v2");
    }
    if let Ok(obj) = serde_json::from_value::<v1::LocustTest>(value) {
        let back = v2_to_v1(&v1_to_v2(&obj).object).object;
        assert_eq!(back, obj, "typed v1 -> v2 -> v1");
    }
}

/// Fuzz target `validation`: every violation has a message and names a field;
/// an accepted v2 object passes the typed validation (the webhook's) too and
/// can be built into its children.
pub fn validation(data: &[u8]) {
    let Some(value) = document(data) else {
        return;
    };
    let violations = validate_value(&value);
    violations.iter().for_each(check_violation);
    if !violations.is_empty() || value["apiVersion"] != V2_API_VERSION {
        return;
    }
    let stored = with_identity(without_null_fields(value));
    let test: v2::LocustTest = serde_json::from_value(stored)
        .unwrap_or_else(|err| panic!("accepted but undecodable: {err}"));
    assert_eq!(validate(&test), Vec::new(), "accepted untyped, not typed");
    if let Err(err) = build_children(&test, &OperatorConfig::default()) {
        panic!("accepted but not buildable: {err}");
    }
}

fn test_with_commands(master: &str, worker: &str) -> Option<v2::LocustTest> {
    serde_json::from_value(json!({
        "apiVersion": V2_API_VERSION,
        "kind": "LocustTest",
        "metadata": {"name": "t", "namespace": "load", "uid": "u"},
        "spec": {
            "image": "locustio/locust:2.43.1",
            "master": {"command": master},
            "worker": {"command": worker, "replicas": 2},
        },
    }))
    .ok()
}

/// Fuzz target `command_split`: on any string, splitting does not panic and
/// its errors name the field; accepted commands are closed (a new line of
/// words is appended as it is); quoting then splitting is the identity; the
/// shell-syntax rule rejects exactly what cannot be split; and the container's
/// command + args are the split words followed by the operator's flags.
pub fn command_split(data: &[u8]) {
    let Ok(command) = std::str::from_utf8(data) else {
        return;
    };
    match split_command(command, MASTER_COMMAND_FIELD) {
        Ok(words) => {
            assert!(!words.is_empty());
            let extended = format!("{command}\nnext --word");
            let mut expected = words.clone();
            expected.extend(["next".to_owned(), "--word".to_owned()]);
            assert_eq!(
                split_command(&extended, MASTER_COMMAND_FIELD),
                Ok(expected),
                "not closed"
            );
            assert_eq!(
                split_command(&shell_words::join(&words), WORKER_COMMAND_FIELD),
                Ok(words.clone()),
                "join then split"
            );
        }
        Err(err) => {
            assert_eq!(err.field(), MASTER_COMMAND_FIELD);
            assert!(!err.reason().is_empty());
            assert!(
                err.to_string()
                    .starts_with(&format!("{MASTER_COMMAND_FIELD}: "))
            );
        }
    }
    // The input's NUL-separated parts as words: quoted, they split back, unless
    // every word is blank by Unicode's definition (e.g. U+2028, "\r", ""): such
    // a command has no program, and the split rejects it.
    let words: Vec<&str> = command.split('\0').collect();
    let joined = shell_words::join(&words);
    let expected = if words.iter().all(|w| w.trim().is_empty()) {
        Err(CommandError::Empty {
            field: WORKER_COMMAND_FIELD,
        })
    } else {
        Ok(words.iter().map(|w| (*w).to_owned()).collect())
    };
    assert_eq!(
        split_command(&joined, WORKER_COMMAND_FIELD),
        expected,
        "join then split of arbitrary words"
    );

    let Some(test) = test_with_commands(command, "locust -f /lotest/src/locustfile.py") else {
        return;
    };
    let splits = split_command(command, MASTER_COMMAND_FIELD).is_ok();
    let blank = command.trim().is_empty();
    let violations = validate(&test);
    let shell_rule = violations
        .iter()
        .any(|v| v.rule == Some("master-command-shell-syntax"));
    assert_eq!(shell_rule, !blank && !splits, "the shell-syntax rule");
    assert!(
        !violations.is_empty() || splits,
        "accepted but not splittable"
    );
    match master_args(&test.spec) {
        Ok(args) => {
            let built = master_container_command(&test.spec)
                .unwrap_or_else(|err| panic!("args but no container command: {err}"));
            let ContainerCommand {
                command,
                args: rest,
            } = built.clone();
            let mut all = command.unwrap_or_default();
            all.extend(rest);
            assert_eq!(all, args);
            assert_eq!(ContainerCommand::from_tokens(args), built);
            assert!(worker_args(&test.spec, "t-master").is_ok());
            if let Err(err) = build_children(&test, &OperatorConfig::default()) {
                panic!("splittable but not buildable: {err}");
            }
        }
        Err(err) => assert!(!splits, "split but no args: {err}"),
    }
}

fn check_row(row: &RowStats) {
    let numbers = [
        row.avg_response_time,
        row.min_response_time,
        row.max_response_time,
        row.total_rps,
    ];
    assert!(numbers.into_iter().flatten().all(f64::is_finite));
    for (q, x) in &row.percentiles {
        assert!(x.is_finite());
        let q: f64 = q.parse().unwrap_or_else(|_| panic!("quantile key {q:?}"));
        assert!((0.0..=1.0).contains(&q), "quantile {q}");
    }
}

fn check_result(stats: &MasterStats, csv: Option<&RowStats>) {
    let result = stats::final_result(stats, csv);
    // The result goes into the status: every number must survive JSON.
    let json = serde_json::to_value(&result).unwrap_or_else(|err| panic!("{err}"));
    let back: locust_operator::api::status::TestResult =
        serde_json::from_value(json).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(back, result);
}

/// Fuzz target `stats_parser`: the `/stats/requests` JSON and CSV parsers
/// never panic and give only finite numbers, which survive the status's JSON.
pub fn stats_parser(data: &[u8]) {
    if let Ok(stats) = stats::parse_requests_json(data) {
        let numbers = [stats.total_rps, stats.fail_ratio];
        assert!(numbers.into_iter().flatten().all(f64::is_finite));
        if let Some(row) = &stats.aggregated {
            check_row(row);
        }
        assert_eq!(
            stats.live().total_requests,
            stats.aggregated.as_ref().and_then(|a| a.num_requests)
        );
        check_result(&stats, None);
    }
    if let Ok(Some(row)) = stats::parse_requests_csv(&String::from_utf8_lossy(data)) {
        check_row(&row);
        check_result(&MasterStats::default(), Some(&row));
    }
}

/// The handler's review of a body, or `None` when it could not read the body
/// (an error with a reason and a message).
fn answered<R>(review: Result<R, HandlerError>) -> Option<R> {
    match review {
        Ok(review) => Some(review),
        Err(err) => {
            assert!(!err.reason().is_empty() && !err.to_string().is_empty());
            None
        }
    }
}

/// The request's uid, which the response must echo, when `body` has one.
fn request_uid(body: &[u8]) -> Option<String> {
    let request = serde_json::from_slice::<Value>(body).ok()?;
    request["request"]["uid"].as_str().map(str::to_owned)
}

fn check_admission(body: &[u8]) {
    let Some(review) = answered(handlers::admission_review(body)) else {
        return;
    };
    let response = review.response.expect("a review without a response");
    if let Some(uid) = request_uid(body) {
        assert_eq!(response.uid, uid, "uid not echoed");
    }
    if !response.allowed {
        assert!(!response.result.message.trim().is_empty(), "a bare denial");
        for cause in response.result.details.iter().flat_map(|d| &d.causes) {
            // Only an unknown field named "" at the root has an empty path
            // (as the API server writes it).
            assert!(
                (!cause.field.is_empty() || cause.message.starts_with(UNKNOWN_FIELD))
                    && !cause.message.trim().is_empty(),
                "{cause:?}"
            );
        }
    }
}

/// Fuzz target `admission_review`: the validating webhook's handler on the
/// raw body, and — when the input is a LocustTest document — on CREATE and
/// UPDATE reviews of it: an answer echoing the uid, denials with a message
/// and causes that name fields.
pub fn admission_review(data: &[u8]) {
    check_admission(data);
    let Some(object) = document(data) else {
        return;
    };
    if object["kind"] == "AdmissionReview" {
        return;
    }
    let check = |operation, old| {
        check_admission(
            &serde_json::to_vec(&admission_body(&object, operation, old)).unwrap_or_default(),
        );
    };
    check("CREATE", None);
    check("UPDATE", Some(&object));
    let old = json!({"apiVersion": V2_API_VERSION, "kind": "LocustTest", "metadata": {"name": "t"}, "spec": {}});
    check("UPDATE", Some(&old));
}

/// `expected`: the number of objects sent and the version asked for, when
/// the body is one this crate built.
fn check_conversion_review(body: &[u8], expected: Option<(usize, &str)>) {
    let Some(review) = answered(handlers::convert_review(body)) else {
        return;
    };
    let response = review.response.expect("a review without a response");
    if let Some(uid) = request_uid(body) {
        assert_eq!(response.uid, uid, "uid not echoed");
    }
    if response.result.is_failure() {
        assert!(!response.result.message.trim().is_empty(), "a bare failure");
    } else if let Some((objects, desired)) = expected {
        assert_eq!(response.converted_objects.len(), objects);
        for o in &response.converted_objects {
            assert_eq!(o["apiVersion"], desired);
        }
    }
}

/// Fuzz target `conversion_review`: the conversion webhook's handler on the
/// raw body, and — when the input is a document — on reviews converting it
/// to each version: an answer echoing the uid, every object converted to the
/// desired version, or a failure with a message.
pub fn conversion_review(data: &[u8]) {
    check_conversion_review(data, None);
    let Some(object) = document(data) else {
        return;
    };
    if object["kind"] == "ConversionReview" {
        return;
    }
    for desired in [V1_API_VERSION, V2_API_VERSION] {
        let review = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "0000-1111", "desiredAPIVersion": desired, "objects": [object, object]},
        });
        let body = serde_json::to_vec(&review).unwrap_or_default();
        check_conversion_review(&body, Some((2, desired)));
    }
}
