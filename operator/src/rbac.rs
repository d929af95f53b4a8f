//! The permissions the operator needs, declared once. The manifests generator
//! emits them as the CSV's `clusterPermissions` and `permissions`; the
//! end-to-end tests run the operator under exactly these rules, and
//! `olm-tests/tests/rbac_ablation.rs` proves each verb is needed (the
//! operator's job fails without it). Reads come from watch caches, so no
//! `get` is held except on the Lease. Self-managed webhook certificates need
//! more, by name, and only where that mode is used:
//! [`self_managed_cert_rules`] (not in the CSV).

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
        verbs: &["list", "watch", "create", "delete"],
        why: "controller: watch LocustTests (never reads one by name, never writes their spec); schedules: create the test of each due time, delete a replaced test and those past the history limits",
    },
    Permission {
        api_group: "locust.io",
        resources: &["locustschedules"],
        verbs: &["list", "watch"],
        why: "schedule controller: watch LocustSchedules (never writes their spec)",
    },
    Permission {
        api_group: "locust.io",
        resources: &["locustschedules/status"],
        verbs: &["patch"],
        why: "schedule controller: report last and next schedule times, active tests, last results and conditions",
    },
    Permission {
        api_group: "locust.io",
        resources: &["locustschedules/finalizers"],
        verbs: &["update"],
        why: "schedule controller: created tests carry blockOwnerDeletion owner references, which OwnerReferencesPermissionEnforcement (OpenShift) only allows with this",
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

/// What `--webhook-cert-mode=self-managed` needs on top of [`cluster_rules`]
/// and [`namespaced_rules`]. Not part of the OLM bundle (OLM provides the
/// certificate there): for installs without OLM (Helm chart, `install.yaml`),
/// and only when they run in self-managed mode.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfManagedCertRules {
    /// For the operator's ClusterRole: `get`/`patch` on the CRD and the
    /// ValidatingWebhookConfiguration, by name.
    pub cluster: Vec<PolicyRule>,
    /// For the operator's Role in its namespace: `create` Secrets (a create
    /// cannot be limited by name) and `get`/`update` the certificate Secret.
    pub namespaced: Vec<PolicyRule>,
}

fn named_rule(api_group: &str, resource: &str, verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![api_group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: (!names.is_empty())
            .then(|| names.iter().map(|n| (*n).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The rules of self-managed webhook certificates
/// ([`crate::webhook::certs`]) for the Secret `secret`, and the
/// ValidatingWebhookConfiguration `webhook_configuration` (the CRD is the
/// operator's, [`crate::api::CRD_NAME`]).
pub fn self_managed_cert_rules(secret: &str, webhook_configuration: &str) -> SelfManagedCertRules {
    SelfManagedCertRules {
        cluster: vec![
            named_rule(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                &["get", "patch"],
                &[crate::api::CRD_NAME],
            ),
            named_rule(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                &["get", "patch"],
                &[webhook_configuration],
            ),
        ],
        namespaced: vec![
            named_rule("", "secrets", &["create"], &[]),
            named_rule("", "secrets", &["get", "update"], &[secret]),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_managed_cert_rules_name_every_object_they_read_or_change() {
        let rules = self_managed_cert_rules("cert", "vwc");
        for rule in rules.cluster.iter().chain(&rules.namespaced) {
            assert!(
                !rule
                    .verbs
                    .iter()
                    .any(|v| matches!(v.as_str(), "*" | "delete" | "list" | "watch"))
            );
            if rule.verbs != ["create"] {
                assert!(
                    rule.resource_names.as_ref().is_some_and(|n| n.len() == 1),
                    "{rule:?}"
                );
            }
        }
        assert_eq!(
            rules.cluster[0].resource_names.as_deref(),
            Some(&["locusttests.locust.io".to_owned()][..])
        );
        assert_eq!(
            rules.cluster[1].resource_names.as_deref(),
            Some(&["vwc".to_owned()][..])
        );
        assert_eq!(
            rules.namespaced[1].resource_names.as_deref(),
            Some(&["cert".to_owned()][..])
        );
        assert_eq!(rules.namespaced[1].verbs, ["get", "update"]);
    }

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
            // Garbage collection deletes a test's children, not the operator;
            // the only delete is the schedule controller's, of LocustTests
            // (Replace, history limits).
            assert!(
                !p.verbs.contains(&"delete") || p.resources == ["locusttests"],
                "{:?} may not be deleted by the operator",
                p.resources
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
