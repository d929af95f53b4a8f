//! The permissions the operator needs, declared once. The manifests generator
//! emits them as the CSV's `clusterPermissions` and `permissions`; the
//! end-to-end tests run the operator under exactly these rules, and
//! `olm-tests/tests/rbac_ablation.rs` proves each verb is needed (the
//! operator's job fails without it). Reads come from watch caches, so no
//! `get` is held except on the Lease.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One RBAC rule and the reason the operator holds it.
#[derive(Clone, Copy, Debug)]
pub struct Permission {
    pub api_group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Which code needs it, and why.
    pub why: &'static str,
}

/// Cluster-wide permissions (the operator watches every namespace).
pub const CLUSTER: &[Permission] = &[
    Permission {
        api_group: "locust.io",
        resources: &["locusttests"],
        verbs: &["list", "watch"],
        why: "controller: watch LocustTests (never reads one by name, never writes their spec)",
    },
    Permission {
        api_group: "locust.io",
        resources: &["locusttests/status"],
        verbs: &["patch"],
        why: "controller: report phase, conditions and results (merge patches only)",
    },
    Permission {
        api_group: "locust.io",
        resources: &["locusttests/finalizers"],
        verbs: &["update"],
        why: "controller: children carry blockOwnerDeletion owner references, which OwnerReferencesPermissionEnforcement (OpenShift) only allows with this",
    },
    Permission {
        api_group: "batch",
        resources: &["jobs"],
        verbs: &["list", "watch", "create"],
        why: "controller: create the master and worker Jobs once, watch their status",
    },
    Permission {
        api_group: "",
        resources: &["services"],
        verbs: &["list", "watch", "create"],
        why: "controller: create the master Service once, notice if it is deleted",
    },
    Permission {
        api_group: "",
        resources: &["pods"],
        verbs: &["list", "watch"],
        why: "controller: pod health (image pull, config errors, scheduling) and connected workers",
    },
    Permission {
        api_group: "",
        resources: &["events"],
        verbs: &["list"],
        why: "controller: once a test's start deadline passes, the Warning Events of its pods (FailedMount, FailedScheduling) name why it never started",
    },
    Permission {
        api_group: "authentication.k8s.io",
        resources: &["tokenreviews"],
        verbs: &["create"],
        why: "secure metrics: who the bearer token of a /metrics request belongs to",
    },
    Permission {
        api_group: "authorization.k8s.io",
        resources: &["subjectaccessreviews"],
        verbs: &["create"],
        why: "secure metrics: whether that user may get /metrics",
    },
    Permission {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        why: "controller: an Event at every phase transition and warning",
    },
];

/// Permissions in the operator's own namespace.
pub const NAMESPACED: &[Permission] = &[Permission {
    api_group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "update"],
    why: "leader election: only one replica reconciles",
}];

fn to_rules(perms: &[Permission]) -> Vec<PolicyRule> {
    perms
        .iter()
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.api_group.to_owned()]),
            resources: Some(p.resources.iter().map(|r| (*r).to_owned()).collect()),
            verbs: p.verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

/// Rules for the operator's ClusterRole.
pub fn cluster_rules() -> Vec<PolicyRule> {
    to_rules(CLUSTER)
}

/// Rules for the operator's Role in its own namespace.
pub fn namespaced_rules() -> Vec<PolicyRule> {
    to_rules(NAMESPACED)
}

/// The ClusterRole that lets a subject (Prometheus's ServiceAccount) read
/// the secure `/metrics` ([`crate::metrics_auth`]); shipped with the bundle.
pub const METRICS_READER_ROLE: &str = "locust-k8s-operator-metrics-reader";

/// Rules of [`METRICS_READER_ROLE`]: `get` on the non-resource URL `/metrics`.
pub fn metrics_reader_rules() -> Vec<PolicyRule> {
    vec![PolicyRule {
        non_resource_urls: Some(vec![crate::metrics::METRICS_PATH.to_owned()]),
        verbs: vec!["get".to_owned()],
        ..PolicyRule::default()
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_access_to_secrets_or_configmaps() {
        for p in CLUSTER.iter().chain(NAMESPACED) {
            for r in p.resources {
                assert!(
                    !matches!(*r, "secrets" | "configmaps"),
                    "the operator must never read {r}"
                );
            }
            assert!(!p.verbs.contains(&"*"), "no wildcard verbs");
            assert!(!p.resources.contains(&"*"), "no wildcard resources");
            assert!(
                !p.verbs.contains(&"delete"),
                "garbage collection deletes children, not the operator"
            );
        }
    }

    #[test]
    fn rules_are_emitted_in_declaration_order() {
        let rules = cluster_rules();
        assert_eq!(rules.len(), CLUSTER.len());
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["locusttests".to_owned()][..])
        );
        assert_eq!(
            namespaced_rules()[0].api_groups.as_deref(),
            Some(&["coordination.k8s.io".to_owned()][..])
        );
    }
}
