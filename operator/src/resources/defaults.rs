//! The operator's resource defaults (`--pod-*`, `--master-*`, `--worker-*`
//! requests and limits, see [`OperatorConfig::resource_default`]) and how a
//! test's own `resources` take their place.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::config::{DEFAULTED_RESOURCES, OperatorConfig};
use crate::role::Role;

/// Whether `resources` set any request or limit (an empty map counts as none).
pub fn sets_requests_or_limits(resources: &ResourceRequirements) -> bool {
    let non_empty =
        |m: &Option<BTreeMap<String, Quantity>>| m.as_ref().is_some_and(|m| !m.is_empty());
    non_empty(&resources.requests) || non_empty(&resources.limits)
}

/// The resources of a role's container. One rule, as in the Go operator and as a Pod's own
/// `resources` behave:
///
/// - when the test's `resources` for the role set any request or limit, they are the
///   container's resources exactly as written and replace the operator's defaults for that
///   role entirely: a key the test leaves out has no value, so a test without `limits.cpu`
///   runs without a CPU limit (and Kubernetes takes a missing request from its limit);
/// - otherwise (no `resources`, or only `claims` or empty maps) every `cpu`, `memory` and
///   `ephemeral-storage` request and limit is the role default (`--master-*`/`--worker-*`),
///   else the unified default (`--pod-*`), key by key; an empty default means none. The
///   test's `claims` are kept.
///
/// The operator validates at start-up that no default request exceeds its default limit,
/// so the defaults alone never make a pod the API server rejects.
pub fn effective_resources(
    cfg: &OperatorConfig,
    role: Role,
    cr: Option<&ResourceRequirements>,
) -> ResourceRequirements {
    if let Some(own) = cr.filter(|r| sets_requests_or_limits(r)) {
        return own.clone();
    }
    let defaults = |limit: bool| {
        let map: BTreeMap<String, Quantity> = DEFAULTED_RESOURCES
            .iter()
            .filter_map(|key| {
                cfg.resource_default(role, key, limit)
                    .map(|d| ((*key).to_owned(), Quantity(d.to_owned())))
            })
            .collect();
        (!map.is_empty()).then_some(map)
    };
    ResourceRequirements {
        claims: cr.and_then(|r| r.claims.clone()),
        limits: defaults(true),
        requests: defaults(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), q(v))).collect())
    }

    #[test]
    fn a_test_that_sets_any_value_replaces_every_default() {
        let cfg = OperatorConfig::default();
        let own = ResourceRequirements {
            requests: map(&[("memory", "512Mi"), ("cpu", "500m")]),
            limits: map(&[("memory", "1Gi")]),
            claims: None,
        };
        let got = effective_resources(&cfg, Role::Worker, Some(&own));
        assert_eq!(got, own, "no CPU limit, no default merged in");
        // A limit alone: no request is defaulted either.
        let only_limit = ResourceRequirements {
            limits: map(&[("cpu", "2")]),
            ..ResourceRequirements::default()
        };
        assert_eq!(
            effective_resources(&cfg, Role::Master, Some(&only_limit)),
            only_limit
        );
    }

    #[test]
    fn no_values_take_the_role_defaults_key_by_key() {
        let cfg = OperatorConfig {
            worker_cpu_limit: Some("2".into()),
            worker_memory_request: Some(String::new()),
            pod_ephemeral_storage_limit: Some("1Gi".into()),
            ..OperatorConfig::default()
        };
        let empty = ResourceRequirements {
            requests: Some(BTreeMap::new()),
            ..ResourceRequirements::default()
        };
        for cr in [None, Some(&empty)] {
            let got = effective_resources(&cfg, Role::Worker, cr);
            assert_eq!(
                got.limits,
                map(&[
                    ("cpu", "2"),
                    ("memory", "1024Mi"),
                    ("ephemeral-storage", "1Gi")
                ])
            );
            // An empty role default falls back to the unified default.
            assert_eq!(got.requests, map(&[("cpu", "250m"), ("memory", "128Mi")]));
        }
        let master = effective_resources(&cfg, Role::Master, None);
        assert_eq!(master.limits.unwrap()["cpu"], q("1000m"));
    }

    #[test]
    fn claims_are_kept_with_the_defaults() {
        use k8s_openapi::api::core::v1::ResourceClaim;
        let claims = Some(vec![ResourceClaim {
            name: "gpu".into(),
            request: None,
        }]);
        let cr = ResourceRequirements {
            claims: claims.clone(),
            ..ResourceRequirements::default()
        };
        let got = effective_resources(&OperatorConfig::default(), Role::Worker, Some(&cr));
        assert_eq!(got.claims, claims);
        assert_eq!(got.requests, map(&[("cpu", "250m"), ("memory", "128Mi")]));
    }

    #[test]
    fn no_defaults_at_all_give_no_maps() {
        let cfg = OperatorConfig {
            pod_cpu_request: None,
            pod_memory_request: None,
            pod_cpu_limit: Some(String::new()),
            pod_memory_limit: None,
            ..OperatorConfig::default()
        };
        assert_eq!(
            effective_resources(&cfg, Role::Master, None),
            ResourceRequirements::default()
        );
    }
}
