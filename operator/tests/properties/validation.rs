//! Validation

use locust_operator::validation::rules::{MOUNT_PATH_CONFLICT_MESSAGE, mount_paths_conflict};

use super::*;
use crate::mount_path_reference::reference_conflict;

proptest! {
    #![proptest_config(config())]

    /// Any JSON at all: no panic, and every violation is well formed.
    #[test]
    fn validate_value_never_panics_on_arbitrary_json(value in arb_json()) {
        let violations = validate_value(&value);
        prop_assert!(!violations.is_empty() || value.is_object(), "a non-object accepted");
        check_violations(&value, &violations)?;
    }

    /// Arbitrary JSON under a LocustTest's `apiVersion` and `kind`, so that the
    /// schema walk and the rules see it.
    #[test]
    fn validate_value_names_fields_of_arbitrary_locust_tests(
        v1_api in any::<bool>(),
        metadata in arb_json(),
        spec in arb_json(),
        extra in btree_map(key(), arb_json(), 0..3),
    ) {
        let api_version = if v1_api { V1_API_VERSION } else { V2_API_VERSION };
        let mut value = json!({"apiVersion": api_version, "kind": "LocustTest", "metadata": metadata, "spec": spec});
        if let Some(map) = value.as_object_mut() {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        check_violations(&value, &validate_value(&value))?;
    }

    /// Real objects, mutated: violations are well formed; an accepted v2
    /// object is accepted by the typed validator too and can be built.
    #[test]
    fn mutated_locust_tests_are_rejected_with_fields_or_buildable(value in mutated(&SEEDS)) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if violations.is_empty() && value["apiVersion"] == V2_API_VERSION {
            let stored = with_identity(without_null_fields(value.clone()));
            let test: v2::LocustTest = serde_json::from_value(stored)
                .map_err(|e| TestCaseError::fail(format!("accepted but undecodable: {e}")))?;
            prop_assert_eq!(validate(&test), vec![]);
            check_accepted_is_buildable(&test)?;
        }
    }

    /// Only valid objects, mutated once: most stay decodable, so the rules run.
    #[test]
    fn valid_objects_mutated_once_keep_the_verdicts_consistent(
        value in mutated(&VALID_SEEDS).prop_filter("the unmutated seeds are tested elsewhere", |v| !VALID_SEEDS.contains(v)),
    ) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if value["apiVersion"] == V2_API_VERSION
            && let Ok(test) = serde_json::from_value::<v2::LocustTest>(value.clone())
        {
            let typed = validate(&test);
            // Typed validation (the webhook's) sees the object after decoding, with
            // unknown fields dropped and defaults applied: it can only find fewer
            // problems, never new ones.
            for v in &typed {
                prop_assert!(violations.contains(v), "typed-only violation {v:?}; untyped: {violations:?}");
            }
            if typed.is_empty() {
                let test = serde_json::from_value(with_identity(value.clone()))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_accepted_is_buildable(&test)?;
            }
        }
    }
}

/// Found by the properties above: what fails only when decoding (outside or
/// beyond the CRD schema) used to be reported with an empty field.
#[test]
fn decoding_failures_name_the_field() {
    let base = VALID_SEEDS
        .iter()
        .find(|s| s["apiVersion"] == V2_API_VERSION)
        .unwrap();
    let cases: [(&str, Value, &str, &str); 6] = [
        ("/metadata", Value::Null, "metadata", "Required value"),
        (
            "/metadata",
            json!(["x"]),
            "metadata",
            "cannot decode the object: invalid type: sequence",
        ),
        (
            "/metadata/creationTimestamp",
            json!("yesterday"),
            "metadata.creationTimestamp",
            "cannot decode the object:",
        ),
        (
            "/spec/volumes",
            json!([{"name": "v", "secret": {"secretName": "s", "defaultMode": 1_i64 << 40}}]),
            "spec.volumes[0].secret.defaultMode",
            "cannot decode the object: invalid value: integer",
        ),
        // Map keys in brackets, as the schema checks write them (found with
        // an empty key, which used to give the path `metadata.annotations.`).
        (
            "/metadata/annotations",
            json!({"": null}),
            "metadata.annotations[]",
            "cannot decode the object: invalid type: null",
        ),
        (
            "/metadata/labels",
            json!({"app.kubernetes.io/name": 5}),
            "metadata.labels[app.kubernetes.io/name]",
            "cannot decode the object: invalid type: integer",
        ),
    ];
    for (pointer, bad, field, message) in cases {
        let mut value = base.clone();
        match value.pointer_mut(pointer) {
            Some(slot) => *slot = bad,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                value.pointer_mut(parent).unwrap()[key] = bad;
            }
        }
        let violations = validate_value(&value);
        assert!(
            violations
                .iter()
                .any(|v| v.field == field && v.message.starts_with(message)),
            "{pointer}: {violations:#?}"
        );
        check_violations(&value, &violations).unwrap();
    }
}

/// Found by the properties: the webhook decoded the object without pruning
/// nulls (denying `autoquit: null`, which the API server prunes and the CLI
/// accepts), and a typed `f64` showed as `-1.0` where the document said `-1`.
#[test]
fn the_webhook_decodes_like_the_cli() {
    let mut value = VALID_SEEDS
        .iter()
        .find(|s| s["apiVersion"] == V2_API_VERSION)
        .unwrap()
        .clone();
    value["spec"]["master"]["autoquit"] = Value::Null;
    assert_eq!(validate_value(&value), []);
    let body = serde_json::to_vec(&admission_body(&value, "CREATE", None)).unwrap();
    let review = admission_review(&body).unwrap();
    assert!(review.response.unwrap().allowed);

    value["spec"]["master"]
        .as_object_mut()
        .unwrap()
        .remove("autoquit");
    value["spec"]["thresholds"] = json!({"maxAverageResponseTime": -1});
    let field = "spec.thresholds.maxAverageResponseTime";
    let message = "must be greater than or equal to 0, got -1";
    assert_reports(&validate_value(&value), field, message);
    let typed: v2::LocustTest = serde_json::from_value(value).unwrap();
    assert_reports(&validate(&typed), field, message);
}

/// Asserts that `violations` hold one at `field` saying `message`.
#[track_caller]
fn assert_reports(violations: &[Violation], field: &str, message: &str) {
    assert!(
        violations
            .iter()
            .any(|v| v.field == field && v.message == message),
        "{violations:#?}"
    );
}

proptest! {
    #![proptest_config(config())]

    /// The webhook validates v1 requests as the v2 objects they convert to
    /// (matchPolicy Equivalent): what the v1 rules accept, the v2 rules accept.
    #[test]
    fn accepted_v1_objects_are_accepted_as_v2(value in mutated(&V1_SEEDS)) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if violations.is_empty() {
            let stored = with_identity(without_null_fields(value));
            let old: v1::LocustTest = serde_json::from_value(stored)
                .map_err(|e| TestCaseError::fail(format!("accepted but undecodable: {e}")))?;
            let new = v1_to_v2(&old).object;
            prop_assert_eq!(validate(&new), vec![]);
            check_accepted_is_buildable(&new)?;
        }
    }
}

#[test]
fn every_valid_seed_is_buildable() {
    for seed in VALID_SEEDS.iter() {
        if seed["apiVersion"] == V2_API_VERSION {
            let test: v2::LocustTest = serde_json::from_value(with_identity(seed.clone())).unwrap();
            build_children(&test, &OperatorConfig::default()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Mount paths
// ---------------------------------------------------------------------------

/// Mount paths of one to three short components, with or without a trailing
/// slash, so that equal, nested, lookalike (`/a`, `/ab`, `/.a`) and sibling
/// paths are all frequent; sometimes the root. (Doubled slashes, `.` and `..`
/// are rejected by the paths' own rules, tested in `validation::mount_paths`.)
fn mount_path() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("/".to_owned()),
        12 => "(/(a|b|ab|\\.a)){1,3}/?",
    ]
}

/// A target and whether two targets share a container.
fn target() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["master", "worker", "both"])
}

fn share_a_container(a: &str, b: &str) -> bool {
    a == "both" || b == "both" || a == b
}

/// Every mount of a test: the test-files paths (each mounted or not), the
/// secret mounts and the volume mounts with their targets.
#[derive(Debug, Clone)]
struct Mounts {
    src: (bool, String),
    lib: (bool, String),
    secrets: Vec<String>,
    volumes: Vec<(String, &'static str)>,
}

fn mounts() -> impl Strategy<Value = Mounts> {
    (
        (any::<bool>(), mount_path()),
        (any::<bool>(), mount_path()),
        vec(mount_path(), 0..4),
        vec((mount_path(), target()), 0..4),
    )
        .prop_map(|(src, lib, secrets, volumes)| Mounts {
            src,
            lib,
            secrets,
            volumes,
        })
}

impl Mounts {
    fn object(&self) -> Value {
        let mut test_files = json!({"srcMountPath": self.src.1, "libMountPath": self.lib.1});
        if self.src.0 {
            test_files["configMapRef"] = json!("tests");
        }
        if self.lib.0 {
            test_files["libConfigMapRef"] = json!("lib");
        }
        let secrets: Vec<Value> = self
            .secrets
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"name": format!("s{i}"), "mountPath": p}))
            .collect();
        let volumes: Vec<Value> = self
            .volumes
            .iter()
            .map(|(p, t)| json!({"name": "data", "mountPath": p, "target": t}))
            .collect();
        json!({
            "apiVersion": V2_API_VERSION,
            "kind": "LocustTest",
            "metadata": {"name": "mounts", "namespace": "load"},
            "spec": {
                "image": "locustio/locust:2.43.1",
                "master": {"command": "locust -f /lotest/src/locustfile.py"},
                "worker": {"command": "locust -f /lotest/src/locustfile.py", "replicas": 1},
                "testFiles": test_files,
                "env": {"secretMounts": secrets},
                "volumes": [{"name": "data", "emptyDir": {}}],
                "volumeMounts": volumes,
            }
        })
    }

    /// The fields that must report a conflict, from the reference, each pair
    /// counted at the later field in the order test files, volume mounts,
    /// secret mounts.
    fn expected_fields(&self) -> Vec<&'static str> {
        let mounted: Vec<&str> = [&self.src, &self.lib]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, p)| p.as_str())
            .collect();
        let any_pair = |paths: &[&str]| {
            paths
                .iter()
                .enumerate()
                .any(|(i, a)| paths[i + 1..].iter().any(|b| reference_conflict(a, b)))
        };
        let mut out = Vec::new();
        let volumes_conflict = self.volumes.iter().enumerate().any(|(i, (p, t))| {
            mounted.iter().any(|m| reference_conflict(p, m))
                || self.volumes[i + 1..]
                    .iter()
                    .any(|(q, u)| share_a_container(t, u) && reference_conflict(p, q))
        });
        if volumes_conflict {
            out.push("spec.volumeMounts");
        }
        // Secrets are in both containers: against every volume mount.
        let secrets_conflict = self.secrets.iter().enumerate().any(|(i, s)| {
            mounted.iter().any(|m| reference_conflict(s, m))
                || self.secrets[i + 1..]
                    .iter()
                    .any(|o| reference_conflict(s, o))
                || self.volumes.iter().any(|(p, _)| reference_conflict(s, p))
        });
        if secrets_conflict {
            out.push("spec.env.secretMounts");
        }
        if any_pair(&mounted) {
            out.push("spec.testFiles.libMountPath");
        }
        out
    }
}

/// The v2 schema's CEL rules, compiled once.
static CEL: LazyLock<kube::core::cel::CompiledSchema> = LazyLock::new(|| {
    let schema = serde_json::to_value(schema_for(V2_API_VERSION)).unwrap();
    kube::core::cel::compile_schema(&schema)
});

/// The fields of the CEL rules that reject `value`.
fn cel_fields(value: &Value) -> Vec<String> {
    match kube::core::cel::Validator::new().validate_compiled(&CEL, value, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| e.field_path.trim_start_matches('.').to_owned())
            .collect(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// The Rust rule is the reference rule (components, one trailing slash
    /// ignored), and conflicts are symmetric and reflexive.
    #[test]
    fn mount_paths_conflict_is_component_containment(a in mount_path(), b in mount_path()) {
        prop_assert_eq!(mount_paths_conflict(&a, &b), reference_conflict(&a, &b), "{:?} vs {:?}", a, b);
        prop_assert_eq!(mount_paths_conflict(&a, &b), mount_paths_conflict(&b, &a));
        prop_assert!(mount_paths_conflict(&a, &a));
    }

    /// Whole objects: the validator (typed and untyped) and the CRD's CEL
    /// report a mount conflict exactly at the fields the reference expects,
    /// with the one message, and nothing else.
    #[test]
    fn mount_conflicts_are_found_where_the_reference_finds_them(m in mounts()) {
        let value = m.object();
        let want = m.expected_fields();
        let untyped = validate_value(&value);
        let fields: Vec<&str> = untyped.iter().map(|v| v.field.as_str()).collect();
        prop_assert_eq!(&fields, &want, "{:?}", untyped);
        prop_assert!(untyped.iter().all(|v| v.message == MOUNT_PATH_CONFLICT_MESSAGE));
        let typed: v2::LocustTest = serde_json::from_value(value.clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(validate(&typed), untyped);
        prop_assert_eq!(cel_fields(&value), want);
    }
}

/// The strategy reaches every outcome of the mount rules.
#[test]
fn mount_strategy_reaches_every_field() {
    let all = sample(mounts(), 512);
    for field in [
        "spec.volumeMounts",
        "spec.env.secretMounts",
        "spec.testFiles.libMountPath",
    ] {
        let hits = all
            .iter()
            .filter(|m| m.expected_fields().contains(&field))
            .count();
        assert!(hits >= 20, "{field}: {hits} of 512");
    }
    let clean = all
        .iter()
        .filter(|m| m.expected_fields().is_empty())
        .count();
    assert!(clean >= 20, "{clean} of 512 without conflict");
}
