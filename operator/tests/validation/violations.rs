//! Violations beyond the rules

use super::*;

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
        let got = typed_messages(&v);
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
    let got = typed_messages(&v);
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
    let got = typed_messages(&v);
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
    let got = typed_messages(&v);
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
