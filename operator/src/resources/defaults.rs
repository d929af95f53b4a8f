//! The operator's resource defaults (`--pod-*`, `--master-*`, `--worker-*`
//! requests and limits, see [`OperatorConfig::resource_default`]) applied to
//! the resources a test gives for a container.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::config::{DEFAULTED_RESOURCES, OperatorConfig};
use crate::role::Role;
use crate::units::quantity_value;

/// The resources of a role's container. For `cpu`, `memory` and `ephemeral-storage`, in
/// requests and in limits separately: the test's value, else the role default
/// (`--master-*`/`--worker-*`), else the unified default (`--pod-*`). Other keys
/// (GPUs, hugepages) and `claims` are taken from the test unchanged.
///
/// A default never contradicts a value the test gives explicitly: a defaulted request
/// above the test's limit for the same key is lowered to that limit, and a defaulted
/// limit below the test's request is raised to that request (otherwise the API server
/// would reject the pod for a value the user never wrote).
pub fn effective_resources(
    cfg: &OperatorConfig,
    role: Role,
    cr: Option<&ResourceRequirements>,
) -> ResourceRequirements {
    let mut requests = cr.and_then(|r| r.requests.clone()).unwrap_or_default();
    let mut limits = cr.and_then(|r| r.limits.clone()).unwrap_or_default();
    for key in DEFAULTED_RESOURCES {
        let explicit_request = requests.contains_key(key);
        let explicit_limit = limits.contains_key(key);
        if !explicit_request && let Some(d) = cfg.resource_default(role, key, false) {
            requests.insert(key.to_owned(), Quantity(d.to_owned()));
        }
        if !explicit_limit && let Some(d) = cfg.resource_default(role, key, true) {
            limits.insert(key.to_owned(), Quantity(d.to_owned()));
        }
        let (Some(req), Some(lim)) = (requests.get(key), limits.get(key)) else {
            continue;
        };
        let (Some(req_v), Some(lim_v)) = (quantity_value(&req.0), quantity_value(&lim.0)) else {
            continue;
        };
        if req_v <= lim_v {
            continue;
        }
        if !explicit_request && explicit_limit {
            let lowered = lim.clone();
            requests.insert(key.to_owned(), lowered);
        } else if explicit_request && !explicit_limit {
            let raised = req.clone();
            limits.insert(key.to_owned(), raised);
        }
    }
    ResourceRequirements {
        claims: cr.and_then(|r| r.claims.clone()),
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
    }
}
