//! Labels and annotations the operator puts on a test's children, and the spec hash.

use std::collections::BTreeMap;

use super::Role;
use super::names::{Fnv1a64, job_name, label_value};
use crate::api::LocustTestSpec;

/// `app.kubernetes.io/name`, always [`APP_NAME`].
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`, the test name.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/component`, `master` or `worker`.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/managed-by`, always [`OPERATOR_NAME`].
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/part-of`, always [`OPERATOR_NAME`].
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// v1 label users select on: the test name.
pub const LABEL_TEST_NAME: &str = "performance-test-name";
/// v1 label users select on: the name of the child Job the pod belongs to.
pub const LABEL_TEST_POD_NAME: &str = "performance-test-pod-name";
/// v1 label users select on: always [`OPERATOR_NAME`].
pub const LABEL_LEGACY_MANAGED_BY: &str = "managed-by";
/// Label the Go operator's users select on (`-l app=<test>`): the test name. Unlike the
/// operator's other labels, a test's own `labels` may give it another value on its pods (as
/// in the Go operator): nothing the operator selects or looks up uses it.
pub const LABEL_APP: &str = "app";

/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "locust";
/// Value of the managed-by and part-of labels.
pub const OPERATOR_NAME: &str = "locust-k8s-operator";

/// Label selector matching every object the operator manages, for watches.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=locust-k8s-operator";

/// Annotation holding [`spec_hash`] of the spec a child was built from.
pub const SPEC_HASH_ANNOTATION: &str = "locust.io/spec-hash";

/// The label keys a test's `labels` cannot change: every operator label but [`LABEL_APP`].
/// They hold the Service selector ([`selector_labels`]) and the keys the controller finds a
/// test's pods by ([`POD_LOOKUP_LABEL_KEYS`]), so a user label must not replace them; user
/// labels with these keys are ignored.
pub const OPERATOR_LABEL_KEYS: [&str; 8] = [
    LABEL_NAME,
    LABEL_INSTANCE,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_TEST_NAME,
    LABEL_TEST_POD_NAME,
    LABEL_LEGACY_MANAGED_BY,
];

/// The label keys the controller finds a test's pods by (its pod watch and what it observes
/// of them): the test name, managed-by and the component.
pub const POD_LOOKUP_LABEL_KEYS: [&str; 3] = [LABEL_TEST_NAME, LABEL_MANAGED_BY, LABEL_COMPONENT];

/// Whether `key` is one of the operator's own label keys that a test cannot change.
pub fn is_operator_label_key(key: &str) -> bool {
    OPERATOR_LABEL_KEYS.contains(&key)
}

/// The labels that select one role's pods of one test (used by the master Service):
/// name, instance and component.
pub fn selector_labels(test_name: &str, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
        (LABEL_INSTANCE.to_owned(), label_value(test_name)),
        (LABEL_COMPONENT.to_owned(), role.as_str().to_owned()),
    ])
}

/// All operator labels of a role's children: the selector labels plus managed-by, part-of,
/// the v1 labels (`performance-test-name`, `performance-test-pod-name`, `managed-by`) and
/// `app`, the test name.
pub fn operator_labels(test_name: &str, role: Role) -> BTreeMap<String, String> {
    let mut labels = selector_labels(test_name, role);
    labels.insert(LABEL_APP.to_owned(), label_value(test_name));
    labels.insert(LABEL_MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned());
    labels.insert(LABEL_PART_OF.to_owned(), OPERATOR_NAME.to_owned());
    labels.insert(LABEL_TEST_NAME.to_owned(), label_value(test_name));
    labels.insert(LABEL_TEST_POD_NAME.to_owned(), job_name(test_name, role));
    labels.insert(LABEL_LEGACY_MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned());
    labels
}

/// Labels of a role's pod template: the operator's labels, then the user's, except those
/// with a key of [`OPERATOR_LABEL_KEYS`], which the operator's value keeps. So a user label
/// may replace `app` (as in the Go operator) but never the Service selector or the labels
/// the controller finds the pods by.
pub fn pod_labels(
    test_name: &str,
    role: Role,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = operator_labels(test_name, role);
    labels.extend(
        user.iter()
            .filter(|(k, _)| !is_operator_label_key(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    labels
}

/// Stable hash of a spec: 16 hex digits of the 64-bit FNV-1a of its canonical JSON
/// (serde_json output of the typed spec; every map in it is a `BTreeMap`, so the text is
/// deterministic). Equal specs give equal hashes; any changed field changes the hash.
pub fn spec_hash(spec: &LocustTestSpec) -> String {
    let mut hasher = Fnv1a64::default();
    // Serialising plain data into an infallible writer cannot fail (every map key is a
    // string); were it to, the hash of the partial output is still deterministic.
    if serde_json::to_writer(&mut hasher, spec).is_err() {
        hasher.update(b"\0serialization-error");
    }
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_and_the_pod_lookup_keys_are_protected_and_app_is_not() {
        for role in [Role::Master, Role::Worker] {
            for key in selector_labels("t", role).keys() {
                assert!(is_operator_label_key(key), "{key}");
            }
        }
        for key in POD_LOOKUP_LABEL_KEYS {
            assert!(is_operator_label_key(key), "{key}");
        }
        assert!(!is_operator_label_key(LABEL_APP));
        // Every operator label but `app` is protected.
        let operator = operator_labels("t", Role::Master);
        let protected: Vec<&String> = operator
            .keys()
            .filter(|k| is_operator_label_key(k))
            .collect();
        assert_eq!(protected.len(), OPERATOR_LABEL_KEYS.len());
        assert_eq!(operator.len(), OPERATOR_LABEL_KEYS.len() + 1);
    }

    #[test]
    fn user_labels_replace_app_but_no_protected_label() {
        let mut user: BTreeMap<String, String> = OPERATOR_LABEL_KEYS
            .iter()
            .map(|k| ((*k).to_owned(), "hijacked".to_owned()))
            .collect();
        user.insert(LABEL_APP.to_owned(), "checkout".to_owned());
        user.insert("team".to_owned(), "shop".to_owned());
        for role in [Role::Worker, Role::Master] {
            let labels = pod_labels("demo", role, &user);
            for (k, v) in operator_labels("demo", role) {
                let want = if k == LABEL_APP {
                    "checkout"
                } else {
                    v.as_str()
                };
                assert_eq!(labels[&k], want, "{k}");
            }
            assert_eq!(labels["team"], "shop");
            assert_eq!(labels.len(), OPERATOR_LABEL_KEYS.len() + 2);
        }
        // Without a user `app`, it is the test name.
        assert_eq!(
            pod_labels("demo", Role::Worker, &BTreeMap::new())[LABEL_APP],
            "demo"
        );
    }
}
