//! Admission rules (`locust_operator::validation`) and the CRD they are
//! injected into (`locust_operator::crd`).
//!
//! Every rule has an accepted and a rejected case. Each case is checked three
//! ways: the typed Rust validator, the untyped (CLI) validator, and the CEL
//! rules of the generated CRD evaluated client-side by kube's CEL evaluator,
//! which must agree with the Rust mirror on the field and the message.
//!
//! Layout: the fixtures here; `rule_cases` (one accepted and one rejected case
//! per rule), `mount_paths` (the mount path conflict rule, pair by pair),
//! `violations` (beyond the rules) and `crd_schema` (the CRD).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
    JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::core::cel::{CompiledSchema, compile_schema};
use locust_operator::api::{v1, v2};
use locust_operator::crd::{
    self, BOUNDS, Bound, ConversionTarget, ITEMS, schema_at, set_webhook_conversion,
    validation_rule, with_webhook_conversion,
};
use locust_operator::validation::{
    self, RULES, Rule, V1_RULES, V1_WEBHOOK_RULES, Violation, WEBHOOK_RULES, cel_rules_at,
    v1_cel_rules_at, validate, validate_v1, validate_value,
};
use serde_json::{Value, json};

// --- Fixtures -------------------------------------------------------------------

const LOCUSTFILE_CMD: &str = "locust -f /lotest/src/locustfile.py";

fn base() -> Value {
    json!({
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": "demo", "namespace": "load"},
        "spec": {
            "image": "locustio/locust:2.43.1",
            "master": {"command": LOCUSTFILE_CMD},
            "worker": {"command": LOCUSTFILE_CMD, "replicas": 2}
        }
    })
}

/// A valid object using every feature the rules look at.
fn full() -> Value {
    let mut v = base();
    v["spec"]["testFiles"] = json!({"configMapRef": "tests", "libConfigMapRef": "lib"});
    v["spec"]["env"] = json!({
        "configMapRefs": [{"name": "cfg", "prefix": "TEST_"}],
        "secretRefs": [{"name": "creds"}],
        "secretMounts": [{"name": "tls", "mountPath": "/etc/locust/certs"}]
    });
    v["spec"]["volumes"] = json!([
        {"name": "results", "persistentVolumeClaim": {"claimName": "results-pvc"}},
        {"name": "shared", "emptyDir": {}}
    ]);
    v["spec"]["volumeMounts"] = json!([
        {"name": "results", "mountPath": "/results"},
        {"name": "shared", "mountPath": "/shared", "target": "worker"}
    ]);
    v["spec"]["observability"] =
        json!({"openTelemetry": {"enabled": true, "endpoint": "otel-collector.monitoring:4317"}});
    v["spec"]["master"]["resources"] = json!({"requests": {"cpu": "500m", "memory": "1Gi"}});
    v
}

fn base_v1() -> Value {
    json!({
        "apiVersion": "locust.io/v1",
        "kind": "LocustTest",
        "metadata": {"name": "demo", "namespace": "load"},
        "spec": {
            "masterCommandSeed": "--locustfile /lotest/src/demo.py --host https://example.com",
            "workerCommandSeed": "--locustfile /lotest/src/demo.py",
            "workerReplicas": 3,
            "image": "locustio/locust:2.43.1"
        }
    })
}

fn edit(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

fn is_v1(v: &Value) -> bool {
    v["apiVersion"] == "locust.io/v1"
}

/// Violations found by the typed validator of the object's version.
fn typed_violations(v: &Value) -> Vec<Violation> {
    if is_v1(v) {
        let t: v1::LocustTest = serde_json::from_value(v.clone()).unwrap();
        validate_v1(&t)
    } else {
        let t: v2::LocustTest = serde_json::from_value(v.clone()).unwrap();
        validate(&t)
    }
}

/// [`typed_violations`] as the messages users read.
fn typed_messages(v: &Value) -> Vec<String> {
    typed_violations(v)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn schema_of(crd: &CustomResourceDefinition, version: &str) -> JSONSchemaProps {
    crd::version_schema(crd, version).cloned().unwrap()
}

fn version_of<'a>(
    crd: &'a CustomResourceDefinition,
    name: &str,
) -> &'a CustomResourceDefinitionVersion {
    crd.spec.versions.iter().find(|v| v.name == name).unwrap()
}

/// The generated CRD's CEL rules for `version`, compiled once.
fn compiled_cel(version: &str) -> &'static CompiledSchema {
    static V1: LazyLock<CompiledSchema> = LazyLock::new(|| compiled_version("v1"));
    static V2: LazyLock<CompiledSchema> = LazyLock::new(|| compiled_version("v2"));
    fn compiled_version(version: &str) -> CompiledSchema {
        compile_schema(&serde_json::to_value(schema_of(&crd::crd(), version)).unwrap())
    }
    if version == "v1" { &V1 } else { &V2 }
}

/// `(field, message)` of every CEL rule of the generated CRD that rejects `v`.
fn cel_violations(v: &Value) -> Vec<(String, String)> {
    let version = if is_v1(v) { "v1" } else { "v2" };
    cel::cel_errors(compiled_cel(version), v)
}

struct Expected {
    field: &'static str,
    message: &'static str,
    cel: bool,
}

fn expected(version_is_v1: bool, id: &str) -> Expected {
    fn find<T>(rules: &'static [Rule<T>], id: &str) -> Option<Expected> {
        rules.iter().find(|r| r.id == id).map(|r| Expected {
            field: r.field,
            message: r.message,
            cel: true,
        })
    }
    fn find_hook<T>(rules: &'static [validation::WebhookRule<T>], id: &str) -> Option<Expected> {
        rules.iter().find(|r| r.id == id).map(|r| Expected {
            field: r.field,
            message: r.message,
            cel: false,
        })
    }
    let found = if version_is_v1 {
        find(V1_RULES, id).or_else(|| find_hook(V1_WEBHOOK_RULES, id))
    } else {
        find(RULES, id).or_else(|| find_hook(WEBHOOK_RULES, id))
    };
    found.unwrap_or_else(|| panic!("no rule {id}"))
}

/// The accepted object passes every check; the rejected one fails exactly
/// rule `id`, with its field and message, in Rust (typed and untyped) and —
/// for CEL rules — in the CRD's CEL; webhook-only rules pass CEL.
fn check_case(id: &str, accepted: Value, rejected: Value) {
    assert_eq!(
        is_v1(&accepted),
        is_v1(&rejected),
        "{id}: same version expected"
    );
    let exp = expected(is_v1(&rejected), id);

    assert_eq!(
        typed_violations(&accepted),
        vec![],
        "{id}: accepted case (typed)"
    );
    assert_eq!(
        validate_value(&accepted),
        vec![],
        "{id}: accepted case (untyped)"
    );
    assert_eq!(
        cel_violations(&accepted),
        vec![],
        "{id}: accepted case (CEL)"
    );

    let want = vec![Violation {
        field: exp.field.to_owned(),
        message: exp.message.to_owned(),
        rule: Some(
            RULES
                .iter()
                .map(|r| r.id)
                .chain(WEBHOOK_RULES.iter().map(|r| r.id))
                .chain(V1_RULES.iter().map(|r| r.id))
                .chain(V1_WEBHOOK_RULES.iter().map(|r| r.id))
                .find(|r| *r == id)
                .unwrap(),
        ),
    }];
    assert_eq!(
        typed_violations(&rejected),
        want,
        "{id}: rejected case (typed)"
    );
    assert_eq!(
        validate_value(&rejected),
        want,
        "{id}: rejected case (untyped)"
    );
    let cel_want = if exp.cel {
        vec![(exp.field.to_owned(), exp.message.to_owned())]
    } else {
        vec![]
    };
    assert_eq!(
        cel_violations(&rejected),
        cel_want,
        "{id}: rejected case (CEL)"
    );
    assert_eq!(
        want[0].to_string(),
        format!("{}: {}", exp.field, exp.message),
        "{id}: Display"
    );
}

#[path = "../support/cel.rs"]
mod cel;
mod crd_schema;
#[path = "../support/mount_path_reference.rs"]
mod mount_path_reference;
mod mount_paths;
mod rule_cases;
mod violations;
