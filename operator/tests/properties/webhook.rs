//! Webhook request bodies

use super::*;

fn conversion_body(objects: Vec<Value>, desired: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "0000-1111",
            "desiredAPIVersion": desired,
            "objects": objects,
        }
    })
}

/// An admission review answered: the uid echoed, a denial with a message, and
/// each cause of a 422 naming a field.
fn check_admission(body: &Value, bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(review) = admission_review(bytes) else {
        return Ok(());
    };
    let response = review.response;
    prop_assert!(response.is_some(), "no response");
    let Some(response) = response else {
        return Ok(());
    };
    if let Some(uid) = body["request"]["uid"].as_str() {
        prop_assert_eq!(&response.uid, uid);
    }
    if !response.allowed {
        prop_assert!(
            !response.result.message.trim().is_empty(),
            "denied without a message"
        );
        if let Some(details) = &response.result.details {
            for cause in &details.causes {
                // As in `check_violation`: only an unknown field named "" at
                // the root has an empty path (the API server writes it so too).
                prop_assert!(
                    (!cause.field.is_empty() || cause.message.starts_with(UNKNOWN_FIELD))
                        && !cause.message.trim().is_empty(),
                    "{cause:?}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_handlers_never_panic_on_arbitrary_bodies(bytes in vec(any::<u8>(), 0..256), value in arb_json()) {
        let json = serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for body in [&bytes, &json] {
            if let Err(err) = admission_review(body) {
                prop_assert!(!err.reason().is_empty() && !err.to_string().is_empty());
            }
            if let Err(err) = convert_review(body) {
                prop_assert!(!err.reason().is_empty() && !err.to_string().is_empty());
            }
        }
    }

    /// Reviews of real objects, with the object or the review itself mutated.
    #[test]
    fn admission_reviews_of_mutated_objects(
        object in mutated(&V2_SEEDS),
        update in any::<bool>(),
        review_mutations in vec(mutation(), 0..2),
    ) {
        let old = update.then(|| V2_SEEDS[0].clone());
        let body = admission_body(&object, if update { "UPDATE" } else { "CREATE" }, old.as_ref());
        let body = mutate(body, &review_mutations);
        let bytes = serde_json::to_vec(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_admission(&body, &bytes)?;
        // The API server calls the webhook only with objects that have their type
        // and metadata and pass the schema (it rejects the others itself).
        let violations = validate_value(&object);
        let as_sent = object["apiVersion"] == V2_API_VERSION
            && object["kind"] == "LocustTest"
            && object.get("metadata").is_some_and(Value::is_object)
            && violations.iter().all(|v| v.rule.is_some());
        if review_mutations.is_empty() && !update && as_sent {
            // An unmutated CREATE review of such an object: allowed exactly when
            // no rule (CEL or webhook-only) fails.
            let accepted = violations.is_empty();
            let review = admission_review(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(review.response.is_some_and(|r| r.allowed), accepted);
        }
    }

    #[test]
    fn conversion_reviews_of_mutated_objects(
        objects in vec(mutated(&SEEDS), 0..3),
        to_v1 in any::<bool>(),
        review_mutations in vec(mutation(), 0..2),
    ) {
        let desired = if to_v1 { V1_API_VERSION } else { V2_API_VERSION };
        let count = objects.len();
        let body = mutate(conversion_body(objects, desired), &review_mutations);
        let bytes = serde_json::to_vec(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Ok(review) = convert_review(&bytes) {
            let response = review.response;
            prop_assert!(response.is_some(), "no response");
            if let Some(response) = response {
                if let Some(uid) = body["request"]["uid"].as_str() {
                    prop_assert_eq!(&response.uid, uid);
                }
                if review_mutations.is_empty() && response.result.is_success() {
                    prop_assert_eq!(response.converted_objects.len(), count);
                    for o in &response.converted_objects {
                        prop_assert_eq!(&o["apiVersion"], &json!(desired));
                    }
                }
                if response.result.is_failure() {
                    prop_assert!(!response.result.message.trim().is_empty());
                }
            }
        }
    }
}
