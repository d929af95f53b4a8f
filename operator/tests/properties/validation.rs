//! Validation

use super::*;

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
