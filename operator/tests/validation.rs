//! Admission rules (`locust_operator::validation`) and the CRD they are
//! injected into (`locust_operator::crd`).
//!
//! Every rule has an accepted and a rejected case. Each case is checked three
//! ways: the typed Rust validator, the untyped (CLI) validator, and the CEL
//! rules of the generated CRD evaluated client-side by kube's CEL evaluator,
//! which must agree with the Rust mirror on the field and the message.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
    JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::core::cel::{Validator, compile_schema};
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

fn schema_of(crd: &CustomResourceDefinition, version: &str) -> JSONSchemaProps {
    crd.spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.clone())
        .unwrap()
}

fn version_of<'a>(
    crd: &'a CustomResourceDefinition,
    name: &str,
) -> &'a CustomResourceDefinitionVersion {
    crd.spec.versions.iter().find(|v| v.name == name).unwrap()
}

/// `(field, message)` of every CEL rule of the generated CRD that rejects `v`.
fn cel_violations(v: &Value) -> Vec<(String, String)> {
    let version = if is_v1(v) { "v1" } else { "v2" };
    let schema = serde_json::to_value(schema_of(&crd::crd(), version)).unwrap();
    match Validator::new().validate(&schema, v, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            // kube's evaluator keeps the leading dot of a root rule's fieldPath;
            // the API server reports `metadata.name`.
            .map(|e| {
                (
                    e.field_path.trim_start_matches('.').to_owned(),
                    e.message.clone(),
                )
            })
            .collect(),
    }
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

// --- One accepted and one rejected case per rule ----------------------------------

macro_rules! rule_cases {
    ($( $name:ident => $id:literal { accept: $accept:expr, reject: $reject:expr $(,)? } )*) => {
        /// `(rule id, accepted object, rejected object)` of every case below.
        fn all_cases() -> Vec<(&'static str, Value, Value)> {
            vec![$(($id, $accept, $reject)),*]
        }
        $(
            #[test]
            fn $name() {
                check_case($id, $accept, $reject);
            }
        )*
    };
}

rule_cases! {
    name_length => "name-length" {
        accept: edit(base(), |v| v["metadata"]["name"] = json!("a".repeat(56))),
        reject: edit(base(), |v| v["metadata"]["name"] = json!("a".repeat(57))),
    }
    image_required => "image-required" {
        accept: base(),
        reject: edit(base(), |v| v["spec"]["image"] = json!("  ")),
    }
    master_command_required => "master-command-required" {
        accept: edit(base(), |v| v["spec"]["master"]["command"] = json!("--locustfile /lotest/src/a.py")),
        reject: edit(base(), |v| v["spec"]["master"]["command"] = json!(" \t ")),
    }
    worker_command_required => "worker-command-required" {
        accept: base(),
        reject: edit(base(), |v| v["spec"]["worker"]["command"] = json!("")),
    }
    otel_endpoint_required => "otel-endpoint-required" {
        accept: edit(base(), |v| v["spec"]["observability"] = json!({"openTelemetry": {"enabled": false}})),
        reject: edit(base(), |v| v["spec"]["observability"] = json!({"openTelemetry": {"enabled": true, "endpoint": " "}})),
    }
    volume_mount_unknown_volume => "volume-mount-unknown-volume" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["volumeMounts"][1]["name"] = json!("missing")),
    }
    volume_names_unique => "volume-names-unique" {
        accept: full(),
        reject: edit(full(), |v| {
            v["spec"]["volumes"].as_array_mut().unwrap().push(json!({"name": "results", "emptyDir": {}}));
        }),
    }
    volume_names_reserved => "volume-names-reserved" {
        // Near misses of the reserved names are fine.
        accept: edit(full(), |v| {
            v["spec"]["volumes"] = json!([
                {"name": "results", "emptyDir": {}},
                {"name": "shared", "emptyDir": {}},
                {"name": "locust-secret-", "emptyDir": {}},
                {"name": "locust-secret-1a", "emptyDir": {}},
                {"name": "locust-srcs", "emptyDir": {}}
            ]);
        }),
        reject: edit(full(), |v| {
            v["spec"]["volumes"] = json!([
                {"name": "results", "emptyDir": {}},
                {"name": "shared", "emptyDir": {}},
                {"name": "locust-secret-12", "emptyDir": {}}
            ]);
        }),
    }
    volume_mount_path_conflict => "volume-mount-path-conflict" {
        // The lib path is free while no lib ConfigMap is mounted there.
        accept: edit(full(), |v| {
            v["spec"]["testFiles"] = json!({"configMapRef": "tests"});
            v["spec"]["volumeMounts"][0]["mountPath"] = json!("/opt/locust/lib");
        }),
        reject: edit(full(), |v| v["spec"]["volumeMounts"][0]["mountPath"] = json!("/etc/locust/certs")),
    }
    secret_mount_paths_unique => "secret-mount-paths-unique" {
        accept: edit(full(), |v| {
            v["spec"]["env"]["secretMounts"] = json!([
                {"name": "a", "mountPath": "/etc/a"}, {"name": "b", "mountPath": "/etc/b"}
            ]);
        }),
        reject: edit(full(), |v| {
            v["spec"]["env"]["secretMounts"] = json!([
                {"name": "a", "mountPath": "/etc/a"}, {"name": "b", "mountPath": "/etc/a"}
            ]);
        }),
    }
    secret_mount_path_conflict => "secret-mount-path-conflict" {
        accept: edit(full(), |v| {
            v["spec"]["testFiles"] = json!({"libConfigMapRef": "lib"});
            v["spec"]["env"]["secretMounts"][0]["mountPath"] = json!("/lotest/src");
        }),
        reject: edit(full(), |v| v["spec"]["env"]["secretMounts"][0]["mountPath"] = json!("/opt/locust/lib")),
    }
    test_files_mount_paths_distinct => "test-files-mount-paths-distinct" {
        accept: edit(base(), |v| {
            v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "/lotest", "libMountPath": "/lotest"});
        }),
        reject: edit(base(), |v| {
            v["spec"]["testFiles"] = json!({
                "configMapRef": "tests", "libConfigMapRef": "lib",
                "srcMountPath": "/lotest", "libMountPath": "/lotest"
            });
        }),
    }
    src_mount_path_absolute => "src-mount-path-absolute" {
        accept: edit(base(), |v| v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "/mnt/tests"})),
        reject: edit(base(), |v| v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "lotest/src"})),
    }
    lib_mount_path_absolute => "lib-mount-path-absolute" {
        accept: edit(base(), |v| v["spec"]["testFiles"] = json!({"libConfigMapRef": "lib", "libMountPath": "/mnt/lib"})),
        reject: edit(base(), |v| v["spec"]["testFiles"] = json!({"libConfigMapRef": "lib", "libMountPath": "lib"})),
    }
    secret_mount_paths_absolute => "secret-mount-paths-absolute" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["env"]["secretMounts"][0]["mountPath"] = json!("etc/certs")),
    }
    volume_mount_paths_absolute => "volume-mount-paths-absolute" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["volumeMounts"][1]["mountPath"] = json!("shared")),
    }
    output_paths_on_master_volume => "output-paths-on-master-volume" {
        accept: edit(full(), |v| v["spec"]["output"] = json!({
            "htmlReport": {"enabled": true, "path": "/results/report.html"},
            "jsonFile": {"enabled": false, "path": "/shared/not-written"},
            "csv": {"enabled": true, "prefix": "/results/run"}
        })),
        // `/shared` is mounted on the workers only.
        reject: edit(full(), |v| v["spec"]["output"] = json!({
            "htmlReport": {"enabled": true, "path": "/results/report.html"},
            "jsonFile": {"enabled": true, "path": "/shared/stats"}
        })),
    }
    master_command_shell_syntax => "master-command-shell-syntax" {
        accept: edit(base(), |v| v["spec"]["master"]["command"] = json!("locust -f '/lotest/src/my file.py' # comment")),
        reject: edit(base(), |v| v["spec"]["master"]["command"] = json!("locust -f \"/lotest/src/my file.py")),
    }
    worker_command_shell_syntax => "worker-command-shell-syntax" {
        accept: edit(base(), |v| v["spec"]["worker"]["command"] = json!("locust -f \"/lotest/src/my file.py\"")),
        // Splits into no word at all: everything is a comment.
        reject: edit(base(), |v| v["spec"]["worker"]["command"] = json!("# locust -f x.py")),
    }
    v1_name_length => "name-length" {
        accept: edit(base_v1(), |v| v["metadata"]["name"] = json!("b".repeat(56))),
        reject: edit(base_v1(), |v| v["metadata"]["name"] = json!("b".repeat(60))),
    }
    v1_image_required => "image-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["image"] = json!("")),
    }
    v1_master_command_seed_required => "master-command-seed-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["masterCommandSeed"] = json!("\n")),
    }
    v1_worker_command_seed_required => "worker-command-seed-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["workerCommandSeed"] = json!("  ")),
    }
    v1_master_command_seed_shell_syntax => "master-command-seed-shell-syntax" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["masterCommandSeed"] = json!("--locustfile 'demo.py")),
    }
    v1_worker_command_seed_shell_syntax => "worker-command-seed-shell-syntax" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["workerCommandSeed"] = json!("--locustfile \"demo.py")),
    }
}

#[test]
fn every_rule_has_a_case() {
    let cases = all_cases();
    let covered: BTreeSet<(bool, &str)> = cases
        .iter()
        .map(|(id, _, rejected)| (is_v1(rejected), *id))
        .collect();
    assert_eq!(covered.len(), cases.len(), "one case per rule and version");
    let v2 = RULES
        .iter()
        .map(|r| r.id)
        .chain(WEBHOOK_RULES.iter().map(|r| r.id))
        .map(|id| (false, id));
    let v1 = V1_RULES
        .iter()
        .map(|r| r.id)
        .chain(V1_WEBHOOK_RULES.iter().map(|r| r.id))
        .map(|id| (true, id));
    let all: BTreeSet<(bool, &str)> = v2.chain(v1).collect();
    assert_eq!(covered, all);
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    fn check(ids: &[&str]) {
        let unique: BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids in {ids:?}");
        for id in ids {
            assert!(
                !id.is_empty()
                    && !id.starts_with('-')
                    && !id.ends_with('-')
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{id} is not kebab-case"
            );
        }
    }
    let v2: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .chain(WEBHOOK_RULES.iter().map(|r| r.id))
        .collect();
    let v1: Vec<&str> = V1_RULES
        .iter()
        .map(|r| r.id)
        .chain(V1_WEBHOOK_RULES.iter().map(|r| r.id))
        .collect();
    check(&v2);
    check(&v1);
}

#[test]
fn rule_field_is_at_joined_with_field_path() {
    fn expected_field(at: &[&str], field_path: &str) -> String {
        if at.is_empty() {
            field_path.trim_start_matches('.').to_owned()
        } else {
            format!("{}{}", at.join("."), field_path)
        }
    }
    fn check<T>(rules: &[Rule<T>]) {
        for r in rules {
            assert!(
                r.field_path.is_empty() || r.field_path.starts_with('.'),
                "{}: fieldPath must start with '.'",
                r.id
            );
            assert_eq!(r.field, expected_field(r.at, r.field_path), "{}", r.id);
        }
    }
    check(RULES);
    check(V1_RULES);
}

#[test]
fn messages_name_their_field_and_fit_kubernetes() {
    fn check(id: &str, field: &str, message: &str) {
        let leaf = field.rsplit('.').next().unwrap();
        assert!(message.contains(leaf), "{id}: message does not name {leaf}");
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{id}: line break"
        );
        assert!(
            message.contains(';') || message.contains(':'),
            "{id}: no fix given"
        );
    }
    for r in RULES {
        check(r.id, r.field, r.message);
    }
    for r in V1_RULES {
        check(r.id, r.field, r.message);
    }
    for r in WEBHOOK_RULES {
        check(r.id, r.field, r.message);
    }
    for r in V1_WEBHOOK_RULES {
        check(r.id, r.field, r.message);
    }
}

#[test]
fn cel_rules_at_lists_the_rules_of_a_location() {
    let spec = cel_rules_at(&["spec"]);
    let ids: Vec<&str> = spec.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            "volume-mount-unknown-volume",
            "volume-mount-path-conflict",
            "secret-mount-path-conflict",
            "output-paths-on-master-volume"
        ]
    );
    assert_eq!(
        cel_rules_at(&[]).iter().map(|r| r.id).collect::<Vec<_>>(),
        ["name-length"]
    );
    assert!(cel_rules_at(&["spec", "nowhere"]).is_empty());
    assert_eq!(
        v1_cel_rules_at(&["spec", "masterCommandSeed"])
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        ["master-command-seed-required"]
    );
    let total: usize = RULES
        .iter()
        .map(|r| r.at)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|at| cel_rules_at(at).len())
        .sum();
    assert_eq!(total, RULES.len());
}

// --- Violations beyond the rules ----------------------------------------------------

#[test]
fn valid_objects_pass() {
    for v in [base(), full(), base_v1()] {
        assert_eq!(typed_violations(&v), vec![], "{v}");
        assert_eq!(validate_value(&v), vec![], "{v}");
        assert_eq!(cel_violations(&v), vec![], "{v}");
    }
}

#[test]
fn every_violation_is_reported_in_a_stable_order() {
    let bad = edit(full(), |v| {
        v["metadata"]["name"] = json!("x".repeat(70));
        v["spec"]["image"] = json!("");
        v["spec"]["worker"]["replicas"] = json!(0);
        v["spec"]["worker"]["command"] = json!("locust 'oops");
        v["spec"]["volumeMounts"][0]["mountPath"] = json!("relative");
    });
    let got = typed_violations(&bad);
    let fields: Vec<(&str, Option<&str>)> =
        got.iter().map(|v| (v.field.as_str(), v.rule)).collect();
    assert_eq!(
        fields,
        [
            ("spec.worker.replicas", None),
            ("metadata.name", Some("name-length")),
            ("spec.image", Some("image-required")),
            ("spec.volumeMounts", Some("volume-mount-paths-absolute")),
            ("spec.worker.command", Some("worker-command-shell-syntax")),
        ]
    );
    assert_eq!(typed_violations(&bad), got, "deterministic");
    assert_eq!(validate_value(&bad)[0].field, "spec.worker.replicas");
}

#[test]
fn worker_replicas_range_comes_from_the_schema() {
    for (replicas, ok) in [
        (0, false),
        (1, true),
        (500, true),
        (501, false),
        (-3, false),
    ] {
        let v = edit(base(), |v| {
            v["spec"]["worker"]["replicas"] = json!(replicas)
        });
        let got: Vec<String> = typed_violations(&v)
            .iter()
            .map(ToString::to_string)
            .collect();
        if ok {
            assert!(got.is_empty(), "{replicas}: {got:?}");
        } else {
            assert_eq!(
                got,
                [format!(
                    "spec.worker.replicas: must be between 1 and 500, got {replicas}"
                )]
            );
        }
    }
}

#[test]
fn autoquit_timeout_must_not_be_negative() {
    let v = edit(base(), |v| {
        v["spec"]["master"]["autoquit"] = json!({"enabled": true, "timeout": -1})
    });
    let got: Vec<String> = typed_violations(&v)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        ["spec.master.autoquit.timeout: must be greater than or equal to 0, got -1"]
    );
    let ok = edit(base(), |v| {
        v["spec"]["master"]["autoquit"] = json!({"timeout": 0})
    });
    assert_eq!(typed_violations(&ok), vec![]);
}

#[test]
fn list_and_string_bounds_are_enforced_in_rust_too() {
    let v = edit(base(), |v| {
        v["spec"]["volumes"] = Value::Array(
            (0..65)
                .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
                .collect(),
        );
        v["spec"]["env"] =
            json!({"secretMounts": [{"name": "s", "mountPath": format!("/{}", "p".repeat(4096))}]});
    });
    let got: Vec<String> = typed_violations(&v)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "spec.env.secretMounts[0].mountPath: must be at most 4096 characters long, got 4097",
            "spec.volumes: must have at most 64 items, got 65",
        ]
    );
}

#[test]
fn untyped_validation_reports_schema_errors_like_the_api_server() {
    let v = edit(base(), |v| {
        v["spec"]["worker"]
            .as_object_mut()
            .unwrap()
            .remove("replicas");
        v["spec"]["imagePullPolicy"] = json!("Sometimes");
        v["spec"]["master"]["autostart"] = json!("yes");
        v["spec"]["wrokers"] = json!(3);
        v["spec"]["observability"] =
            json!({"openTelemetry": {"protocol": "grpc", "enabled": null}});
        v["spec"]["master"]["resources"] = json!({"limits": {"cpu": 2, "memory": ["1Gi"]}});
    });
    let got: Vec<String> = validate_value(&v).iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            r#"spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never""#,
            "spec.master.autostart: must be of type boolean, got string",
            "spec.master.resources.limits[memory]: must be an integer or a string, got array",
            "spec.worker.replicas: Required value",
            "spec.wrokers: unknown field; remove it or correct its spelling",
        ]
    );
}

#[test]
fn untyped_validation_prunes_nulls_like_the_api_server() {
    let v = edit(full(), |v| {
        v["spec"]["observability"]["openTelemetry"]["enabled"] = Value::Null;
        v["spec"]["observability"]["openTelemetry"]["protocol"] = Value::Null;
        v["spec"]["master"]["autoquit"] = Value::Null;
        v["spec"]["master"]["labels"] = json!({"team": null, "role": "master"});
    });
    assert_eq!(validate_value(&v), vec![]);
    // Pruned and defaulted: openTelemetry is disabled, so no endpoint is needed.
    let v = edit(v, |v| {
        v["spec"]["observability"]["openTelemetry"]["endpoint"] = Value::Null
    });
    assert_eq!(validate_value(&v), vec![]);
    let v = edit(base(), |v| v["spec"]["worker"]["replicas"] = Value::Null);
    assert_eq!(
        validate_value(&v)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["spec.worker.replicas: Required value"]
    );
}

#[test]
fn untyped_validation_checks_api_version_and_kind() {
    let v = edit(base(), |v| v["apiVersion"] = json!("locust.io/v3"));
    assert_eq!(
        validate_value(&v)[0].to_string(),
        r#"apiVersion: Unsupported value: "locust.io/v3": supported values: "locust.io/v2", "locust.io/v1""#
    );
    let v = edit(base(), |v| v["kind"] = json!("Pod"));
    assert_eq!(
        validate_value(&v),
        vec![Violation {
            field: "kind".into(),
            message: r#"Unsupported value: "Pod": supported values: "LocustTest""#.into(),
            rule: None,
        }]
    );
    let v = edit(base_v1(), |v| v["spec"]["workerReplicas"] = json!(501));
    assert_eq!(
        validate_value(&v)[0].to_string(),
        "spec.workerReplicas: must be between 1 and 500, got 501"
    );
}

#[test]
fn v1_schema_checks() {
    let v = edit(base_v1(), |v| {
        v["spec"]["workerReplicas"] = json!(0);
        v["spec"]["image"] = json!("");
        v["metadata"]["name"] = json!("n".repeat(57));
    });
    let got: Vec<String> = typed_violations(&v)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[0],
        "spec.workerReplicas: must be between 1 and 500, got 0"
    );
    assert!(got[1].starts_with("metadata.name: metadata.name must be at most 56 characters"));
    assert!(got[2].starts_with("spec.image: spec.image must not be empty"));
}

#[test]
fn objects_without_a_name_pass_the_name_rule() {
    // Names generated from generateName are checked once the API server sets them.
    let v = edit(base(), |v| {
        v["metadata"] = json!({"generateName": "demo-"});
    });
    assert_eq!(typed_violations(&v), vec![]);
    assert_eq!(cel_violations(&v), vec![]);
}

// --- The CRD ------------------------------------------------------------------------

#[test]
fn crd_assembles_without_falling_back() {
    let strict = crd::try_crd().unwrap();
    assert_eq!(crd::crd(), strict);
    assert_eq!(crd::crd_without_cel(), crd::try_crd_without_cel().unwrap());
    assert_eq!(
        strict.metadata.name.as_deref(),
        Some("locusttests.locust.io")
    );
    assert!(
        strict.spec.conversion.is_none(),
        "the manifests generator adds conversion"
    );
    let yaml = serde_yaml::to_string(&strict).unwrap();
    assert!(yaml.contains("x-kubernetes-validations"));
}

#[test]
fn crd_names_scope_and_versions() {
    let crd = crd::crd();
    let names = &crd.spec.names;
    assert_eq!(crd.spec.group, "locust.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(names.kind, "LocustTest");
    assert_eq!(names.plural, "locusttests");
    assert_eq!(names.singular.as_deref(), Some("locusttest"));
    assert_eq!(names.list_kind.as_deref(), Some("LocustTestList"));
    assert_eq!(
        names.short_names.as_deref(),
        Some(&["lotest".to_owned()][..])
    );
    assert_eq!(
        names.categories.as_deref(),
        Some(&["locust".to_owned()][..])
    );

    let order: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(order, ["v2", "v1"]);
    let v2 = version_of(&crd, "v2");
    assert!(v2.served && v2.storage);
    assert_ne!(v2.deprecated, Some(true));
    assert!(v2.deprecation_warning.is_none());
    let v1 = version_of(&crd, "v1");
    assert!(v1.served && !v1.storage);
    assert_eq!(v1.deprecated, Some(true));
    assert_eq!(
        v1.deprecation_warning.as_deref(),
        Some("locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2")
    );
    for v in [v2, v1] {
        let status = v.subresources.as_ref().and_then(|s| s.status.as_ref());
        assert!(status.is_some(), "{}: status subresource", v.name);
    }
}

#[test]
fn printer_columns() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let cols = version_of(&crd, version)
            .additional_printer_columns
            .clone()
            .unwrap();
        let got: Vec<(&str, &str, &str, Option<i32>)> = cols
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.type_.as_str(),
                    c.json_path.as_str(),
                    c.priority,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Phase", "string", ".status.phase", None),
                ("Workers", "integer", ".status.expectedWorkers", None),
                ("Connected", "integer", ".status.connectedWorkers", None),
                ("RPS", "number", ".status.live.requestsPerSecond", None),
                ("FailRatio", "number", ".status.live.failRatio", None),
                ("Age", "date", ".metadata.creationTimestamp", None),
                ("Image", "string", ".spec.image", Some(1)),
            ],
            "{version}"
        );
    }
}

/// Visits every schema node, with its path (`properties` by name, array items as `[]`,
/// map values as `{}`).
fn walk(schema: &JSONSchemaProps, path: &str, visit: &mut dyn FnMut(&str, &JSONSchemaProps)) {
    visit(path, schema);
    for (name, prop) in schema.properties.iter().flatten() {
        walk(prop, &format!("{path}.{name}"), visit);
    }
    match schema.items.as_ref() {
        Some(JSONSchemaPropsOrArray::Schema(items)) => walk(items, &format!("{path}[]"), visit),
        Some(JSONSchemaPropsOrArray::Schemas(all)) => {
            for items in all {
                walk(items, &format!("{path}[]"), visit);
            }
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_ref() {
        walk(values, &format!("{path}{{}}"), visit);
    }
    for sub in [&schema.all_of, &schema.any_of, &schema.one_of]
        .into_iter()
        .flatten()
        .flatten()
    {
        walk(sub, &format!("{path}<sub>"), visit);
    }
}

#[test]
fn every_property_has_a_description() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = schema_of(&crd, version);
        let mut missing = Vec::new();
        let mut count = 0;
        walk(&schema, "", &mut |path, node| {
            for (name, prop) in node.properties.iter().flatten() {
                // Kubernetes forbids a description on the root `metadata`; kubectl
                // explain shows ObjectMeta's there.
                if path.is_empty() && name == "metadata" {
                    continue;
                }
                count += 1;
                if prop
                    .description
                    .as_deref()
                    .is_none_or(|d| d.trim().is_empty())
                {
                    missing.push(format!("{path}.{name}"));
                }
            }
        });
        assert!(
            missing.is_empty(),
            "{version}: properties without description: {missing:#?}"
        );
        assert!(count > 40, "{version}: only {count} properties walked");
    }
    // Descriptions of core Kubernetes types survived the generation.
    let v2 = schema_of(&crd, "v2");
    let pvc = schema_at(
        &v2,
        &[
            "spec",
            "volumes",
            ITEMS,
            "persistentVolumeClaim",
            "claimName",
        ],
    )
    .unwrap();
    assert!(
        pvc.description
            .as_deref()
            .unwrap()
            .contains("PersistentVolumeClaim")
    );
    let mount = schema_at(&v2, &["spec", "volumeMounts", ITEMS, "mountPath"]).unwrap();
    assert!(mount.description.is_some());
}

#[test]
fn schemas_are_structural() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = schema_of(&crd, version);
        let mut problems = Vec::new();
        let mut int_or_string = Vec::new();
        walk(&schema, "", &mut |path, node| {
            if node.any_of.is_some()
                || node.one_of.is_some()
                || node.all_of.is_some()
                || node.not.is_some()
            {
                problems.push(format!("{path}: anyOf/oneOf/allOf/not"));
            }
            if node.ref_path.is_some() || node.definitions.is_some() {
                problems.push(format!("{path}: $ref/definitions"));
            }
            if node.pattern.is_some() {
                // The Rust schema checks do not evaluate patterns.
                problems.push(format!("{path}: pattern"));
            }
            let ios = node.x_kubernetes_int_or_string == Some(true);
            let preserve = node.x_kubernetes_preserve_unknown_fields == Some(true);
            if ios {
                int_or_string.push(path.to_owned());
                if node.type_.is_some() {
                    problems.push(format!("{path}: int-or-string with a type"));
                }
            } else if node.type_.is_none() && !preserve {
                problems.push(format!("{path}: no type"));
            }
            if node.properties.is_some()
                && matches!(
                    node.additional_properties,
                    Some(JSONSchemaPropsOrBool::Schema(_))
                )
            {
                problems.push(format!("{path}: properties and additionalProperties"));
            }
        });
        assert!(problems.is_empty(), "{version}: {problems:#?}");
        if version == "v2" {
            for quantity in [
                ".spec.master.resources.limits{}",
                ".spec.master.resources.requests{}",
                ".spec.worker.resources.limits{}",
                ".spec.worker.resources.requests{}",
                ".spec.volumes[].emptyDir.sizeLimit",
            ] {
                assert!(
                    int_or_string.iter().any(|p| p == quantity),
                    "{quantity} is not int-or-string"
                );
            }
        }
    }
}

#[test]
fn metadata_declares_only_name() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = schema_of(&crd, version);
        let metadata = schema_at(&schema, &["metadata"]).unwrap();
        assert_eq!(metadata.type_.as_deref(), Some("object"));
        assert!(metadata.description.is_none(), "Kubernetes forbids it");
        let keys: Vec<&String> = metadata.properties.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["name"]);
        let name = schema_at(&schema, &["metadata", "name"]).unwrap();
        assert_eq!(name.type_.as_deref(), Some("string"));
        assert!(name.max_length.is_none() && name.default.is_none());
    }
}

#[test]
fn bounds_are_in_the_v2_schema() {
    let schema = schema_of(&crd::crd(), "v2");
    for (path, bound) in BOUNDS {
        let node = schema_at(&schema, path).unwrap_or_else(|| panic!("{path:?} missing"));
        match bound {
            Bound::MaxItems(n) => {
                assert_eq!(node.type_.as_deref(), Some("array"), "{path:?}");
                assert_eq!(node.max_items, Some(*n), "{path:?}");
            }
            Bound::MaxLength(n) => {
                assert_eq!(node.type_.as_deref(), Some("string"), "{path:?}");
                assert_eq!(node.max_length, Some(*n), "{path:?}");
            }
        }
    }
    let max_items = |p: &[&str]| schema_at(&schema, p).unwrap().max_items;
    assert_eq!(max_items(&["spec", "volumes"]), Some(64));
    assert_eq!(max_items(&["spec", "volumeMounts"]), Some(64));
    assert_eq!(max_items(&["spec", "env", "secretMounts"]), Some(32));
    assert_eq!(max_items(&["spec", "env", "configMapRefs"]), Some(32));
    assert_eq!(max_items(&["spec", "env", "secretRefs"]), Some(32));
}

fn count_validations(schema: &JSONSchemaProps) -> usize {
    let mut n = 0;
    walk(schema, "", &mut |_, node| {
        n += node.x_kubernetes_validations.as_ref().map_or(0, Vec::len)
    });
    n
}

#[test]
fn every_cel_rule_is_in_the_crd_at_its_location() {
    let crd = crd::crd();
    fn check<T>(schema: &JSONSchemaProps, rules: &[Rule<T>]) {
        for rule in rules {
            let node = schema_at(schema, rule.at)
                .unwrap_or_else(|| panic!("{}: no {:?}", rule.id, rule.at));
            let injected = node.x_kubernetes_validations.as_ref().unwrap();
            let found = injected
                .iter()
                .find(|v| v.rule == rule.cel && v.message.as_deref() == Some(rule.message));
            let found = found.unwrap_or_else(|| panic!("{}: CEL not at {:?}", rule.id, rule.at));
            assert_eq!(found, &validation_rule(rule), "{}", rule.id);
            let want_path = (!rule.field_path.is_empty()).then(|| rule.field_path.to_owned());
            assert_eq!(found.field_path, want_path, "{}", rule.id);
            assert_eq!(
                found.reason.as_deref(),
                Some(rule.reason.as_str()),
                "{}",
                rule.id
            );
            assert!(found.reason.as_deref().unwrap().starts_with("FieldValue"));
        }
        assert_eq!(count_validations(schema), rules.len(), "no stray rules");
    }
    check(&schema_of(&crd, "v2"), RULES);
    check(&schema_of(&crd, "v1"), V1_RULES);
    // In rule order at each location.
    let spec = schema_at(&schema_of(&crd, "v2"), &["spec"])
        .unwrap()
        .clone();
    let at_spec: Vec<String> = spec
        .x_kubernetes_validations
        .unwrap()
        .into_iter()
        .map(|v| v.rule)
        .collect();
    let want: Vec<String> = cel_rules_at(&["spec"])
        .iter()
        .map(|r| r.cel.to_owned())
        .collect();
    assert_eq!(at_spec, want);
}

#[test]
fn crd_without_cel_differs_only_by_the_rules() {
    let with = crd::crd();
    let without = crd::crd_without_cel();
    for version in ["v2", "v1"] {
        assert_eq!(
            count_validations(&schema_of(&without, version)),
            0,
            "{version}"
        );
    }
    let mut stripped = serde_json::to_value(&with).unwrap();
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("x-kubernetes-validations");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut stripped);
    assert_eq!(stripped, serde_json::to_value(&without).unwrap());
}

/// How a CEL rule uses a field.
#[derive(Debug, PartialEq)]
enum Use {
    /// A list iterated by `all`/`exists`/`exists_one`.
    Iterated,
    /// Any other read (compared, trimmed, tested).
    Read,
}

/// The schema paths (from the root; [`ITEMS`] for list items) a CEL rule
/// attached at `at` reads, resolving `self` and the comprehension variables.
fn cel_references(at: &[&str], cel: &str) -> Vec<(Vec<String>, Use)> {
    let chars: Vec<char> = cel.chars().collect();
    let mut refs = Vec::new();
    let mut vars: Vec<(String, Vec<String>)> = Vec::new();
    let mut bind_next: Option<Vec<String>> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
        {
            i += 1;
        }
        let chain: Vec<String> = chars[start..i]
            .iter()
            .collect::<String>()
            .split('.')
            .map(str::to_owned)
            .collect();
        if let Some(path) = bind_next.take() {
            vars.push((chain[0].clone(), path));
            continue;
        }
        let is_call = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
        let (receiver, iterated) = match (is_call, chain.last().map(String::as_str)) {
            (true, Some("all" | "exists" | "exists_one")) => (&chain[..chain.len() - 1], true),
            (true, _) => (&chain[..chain.len() - 1], false),
            (false, _) => (&chain[..], false),
        };
        let Some((head, rest)) = receiver.split_first() else {
            continue;
        };
        let base: Vec<String> = if head == "self" {
            at.iter().map(|s| (*s).to_owned()).collect()
        } else if let Some((_, path)) = vars.iter().find(|(name, _)| name == head) {
            path.clone()
        } else {
            continue;
        };
        let path: Vec<String> = base.into_iter().chain(rest.iter().cloned()).collect();
        if iterated {
            let mut items = path.clone();
            items.push(ITEMS.to_owned());
            bind_next = Some(items);
            refs.push((path, Use::Iterated));
        } else {
            refs.push((path, Use::Read));
        }
    }
    refs
}

/// Why the rules would be too costly for the API server: a referenced field
/// missing from the schema, an iterated list without `maxItems`, or a string
/// read inside a comprehension without `maxLength`.
fn cost_problems<T>(schema: &JSONSchemaProps, rules: &[Rule<T>]) -> Vec<String> {
    let mut problems = Vec::new();
    for rule in rules {
        let refs = cel_references(rule.at, rule.cel);
        let loops = refs.iter().any(|(_, u)| *u == Use::Iterated);
        for (path, usage) in &refs {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let Some(node) = schema_at(schema, &segments) else {
                problems.push(format!("{}: {path:?} is not in the schema", rule.id));
                continue;
            };
            if *usage == Use::Iterated && node.max_items.is_none() {
                problems.push(format!("{}: {path:?} has no maxItems", rule.id));
            }
            if loops && node.type_.as_deref() == Some("string") && node.max_length.is_none() {
                problems.push(format!("{}: {path:?} has no maxLength", rule.id));
            }
        }
    }
    problems
}

#[test]
fn cel_references_resolve_self_and_loop_variables() {
    let refs = cel_references(
        &["spec"],
        "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name && v.name != 'x.y'))",
    );
    let paths: Vec<(String, &Use)> = refs.iter().map(|(p, u)| (p.join("."), u)).collect();
    assert_eq!(
        paths,
        [
            ("spec.volumeMounts".to_owned(), &Use::Read),
            ("spec.volumeMounts".to_owned(), &Use::Iterated),
            ("spec.volumes".to_owned(), &Use::Read),
            ("spec.volumes".to_owned(), &Use::Iterated),
            ("spec.volumes.[].name".to_owned(), &Use::Read),
            ("spec.volumeMounts.[].name".to_owned(), &Use::Read),
            ("spec.volumes.[].name".to_owned(), &Use::Read),
        ]
    );
}

#[test]
fn cel_rules_compile_and_are_bounded_for_the_cost_estimator() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = serde_json::to_value(schema_of(&crd, version)).unwrap();
        let compiled = compile_schema(&schema);
        assert!(
            !compiled.has_errors(),
            "{version}: {:?}",
            compiled.compilation_errors()
        );
    }
    let v2 = schema_of(&crd, "v2");
    assert_eq!(cost_problems(&v2, RULES), Vec::<String>::new());
    assert_eq!(
        cost_problems(&schema_of(&crd, "v1"), V1_RULES),
        Vec::<String>::new()
    );

    // Without the bounds the same check fails.
    let mut unbounded = v2.clone();
    walk_mut(&mut unbounded, &mut |node| {
        node.max_items = None;
        node.max_length = None;
    });
    let problems = cost_problems(&unbounded, RULES);
    assert!(
        problems.iter().any(|p| p.contains("has no maxItems")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("has no maxLength")),
        "{problems:?}"
    );
}

fn walk_mut(schema: &mut JSONSchemaProps, visit: &mut dyn FnMut(&mut JSONSchemaProps)) {
    visit(schema);
    for prop in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        walk_mut(prop, visit);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        walk_mut(items, visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_mut() {
        walk_mut(values, visit);
    }
}

#[test]
fn webhook_conversion_helpers() {
    let ca = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    let mut crd = crd::crd();
    set_webhook_conversion(
        &mut crd,
        ConversionTarget::Service {
            namespace: "locust-system".into(),
            name: "locust-k8s-operator-webhook".into(),
            path: "/convert".into(),
            port: 443,
        },
        Some(ca.clone()),
    );
    let conversion = crd.spec.conversion.as_ref().unwrap();
    assert_eq!(conversion.strategy, "Webhook");
    let webhook = conversion.webhook.as_ref().unwrap();
    assert_eq!(webhook.conversion_review_versions, ["v1"]);
    let client = webhook.client_config.as_ref().unwrap();
    assert_eq!(client.ca_bundle.as_ref().unwrap().0, ca);
    assert!(client.url.is_none());
    let service = client.service.as_ref().unwrap();
    assert_eq!(
        (
            service.namespace.as_str(),
            service.name.as_str(),
            service.path.as_deref(),
            service.port
        ),
        (
            "locust-system",
            "locust-k8s-operator-webhook",
            Some("/convert"),
            Some(443)
        )
    );

    let crd = with_webhook_conversion(
        crd::crd(),
        ConversionTarget::Url("https://127.0.0.1:9443/convert".into()),
        None,
    );
    let client = crd
        .spec
        .conversion
        .unwrap()
        .webhook
        .unwrap()
        .client_config
        .unwrap();
    assert_eq!(
        client.url.as_deref(),
        Some("https://127.0.0.1:9443/convert")
    );
    assert!(client.service.is_none() && client.ca_bundle.is_none());
}
