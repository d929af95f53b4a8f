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

/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "locust";
/// Value of the managed-by and part-of labels.
pub const OPERATOR_NAME: &str = "locust-k8s-operator";

/// Label selector matching every object the operator manages, for watches.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=locust-k8s-operator";

/// Annotation holding [`spec_hash`] of the spec a child was built from.
pub const SPEC_HASH_ANNOTATION: &str = "locust.io/spec-hash";

/// Every label key the operator sets; user labels with these keys are ignored.
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

/// Whether `key` is one of the operator's own label keys.
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

/// All operator labels of a role's children: the selector labels plus managed-by, part-of
/// and the v1 labels (`performance-test-name`, `performance-test-pod-name`, `managed-by`).
pub fn operator_labels(test_name: &str, role: Role) -> BTreeMap<String, String> {
    let mut labels = selector_labels(test_name, role);
    labels.insert(LABEL_MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned());
    labels.insert(LABEL_PART_OF.to_owned(), OPERATOR_NAME.to_owned());
    labels.insert(LABEL_TEST_NAME.to_owned(), label_value(test_name));
    labels.insert(LABEL_TEST_POD_NAME.to_owned(), job_name(test_name, role));
    labels.insert(LABEL_LEGACY_MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned());
    labels
}

/// Labels of a role's pod template: the user's labels, then the operator's, which always
/// win on a key conflict.
pub fn pod_labels(
    test_name: &str,
    role: Role,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = user
        .iter()
        .filter(|(k, _)| !is_operator_label_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(operator_labels(test_name, role));
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
