//! Conversion of untyped objects

use super::*;

fn has_annotation(value: &Value) -> bool {
    value["metadata"]["annotations"]
        .get(V2_SPEC_ANNOTATION)
        .is_some()
}

/// Converts `value` to `other` and back; whatever decodes comes back as its
/// canonical (decoded, re-encoded) form.
fn check_json_round_trip(value: &Value, other: &str) -> Result<(), TestCaseError> {
    let Some(source) = value["apiVersion"].as_str().map(str::to_owned) else {
        prop_assert!(convert_value(value.clone(), other).is_err());
        return Ok(());
    };
    match convert_value_with_warnings(value.clone(), other) {
        Err(err) => check_conversion_error(&err),
        Ok(there) => {
            let back = convert_value_with_warnings(there.object.clone(), &source);
            prop_assert!(back.is_ok(), "converted, but not back: {back:?}");
            let back = back.map(|b| b.object).unwrap_or_default();
            prop_assert_eq!(&back["apiVersion"], &json!(source));
            prop_assert_eq!(&there.object["apiVersion"], &json!(other));
            if has_annotation(value) {
                // A stale or foreign annotation is consumed or dropped (with a
                // warning); the v1-visible spec still survives (see below).
                return Ok(());
            }
            prop_assert!(there.warnings.is_empty(), "{:?}", there.warnings);
            let canonical = canonical(value);
            prop_assert!(
                canonical.is_ok(),
                "converted but undecodable: {canonical:?}"
            );
            prop_assert_eq!(
                without_empty_annotations(back),
                without_empty_annotations(canonical.unwrap_or_default())
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutated real objects (unknown fields, nulls, wrong types) convert both
    /// ways losslessly or are rejected naming a field.
    #[test]
    fn mutated_objects_round_trip_through_the_other_version(value in mutated(&SEEDS)) {
        let other = if value["apiVersion"] == V1_API_VERSION { V2_API_VERSION } else { V1_API_VERSION };
        check_json_round_trip(&value, other)?;
    }

    /// Any JSON at all: no panic, errors carry a reason and a message.
    #[test]
    fn convert_value_never_panics_on_arbitrary_json(value in arb_json(), to_v1 in any::<bool>()) {
        let desired = if to_v1 { V1_API_VERSION } else { V2_API_VERSION };
        if let Err(err) = convert_value(value, desired) {
            check_conversion_error(&err);
        }
    }

    /// A v1 object carrying any `locust.io/v2-spec` annotation (garbage, or the
    /// spec of another object): what v1 shows always wins, both ways.
    #[test]
    fn v1_fields_win_over_any_stored_v2_spec(
        v1_seed in 0..V1_SEEDS.len(),
        v2_seed in mutated(&V2_SEEDS),
        garbage in tricky_string(),
        use_garbage in any::<bool>(),
    ) {
        let mut value = V1_SEEDS[v1_seed].clone();
        let stored = if use_garbage { garbage } else { v2_seed["spec"].to_string() };
        value["metadata"]["annotations"] = json!({ V2_SPEC_ANNOTATION: stored, "team": "shop" });
        let obj: v1::LocustTest = serde_json::from_value(value).unwrap();
        let up = v1_to_v2(&obj).object;
        prop_assert!(up.metadata.annotations.as_ref().is_some_and(|a| !a.contains_key(V2_SPEC_ANNOTATION)));
        let down = v2_to_v1(&up).object;
        prop_assert_eq!(&down.spec, &obj.spec);
        prop_assert_eq!(&down.status, &obj.status);
        // And v2 → v1 → v2 from there is the identity (the typed property, on these inputs).
        prop_assert_eq!(v1_to_v2(&down).object, up);
    }
}

#[test]
fn seeds_cover_both_versions_and_convert() {
    assert!(!V1_SEEDS.is_empty() && V2_SEEDS.len() >= 40);
    for seed in VALID_SEEDS.iter() {
        let other = if seed["apiVersion"] == V1_API_VERSION {
            V2_API_VERSION
        } else {
            V1_API_VERSION
        };
        let there = convert_value(seed.clone(), other).unwrap();
        assert_eq!(
            convert_value(there, seed["apiVersion"].as_str().unwrap()).unwrap()["spec"],
            canonical(seed).unwrap()["spec"]
        );
    }
}
