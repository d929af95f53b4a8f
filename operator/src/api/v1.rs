//! `locust.io/v1` — the legacy API of the Java operator. Served (deprecated) and
//! converted to and from v2 by the conversion webhook.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::LocustTestStatus;
use super::v2::ImagePullPolicy;

/// The deprecation warning of `locust.io/v1`: in the CRD, in webhook
/// responses and from `validate`. The `deprecated = ...` attribute below must
/// repeat it as a literal (the derive takes no constant); a test checks that
/// the two agree.
pub const DEPRECATION_WARNING: &str =
    "locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2";

/// Legacy (v1) desired state of a Locust load test. Deprecated: use `locust.io/v2`.
// The printer columns are the same in both versions: `crd::PRINTER_COLUMNS`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "locust.io",
    version = "v1",
    kind = "LocustTest",
    plural = "locusttests",
    singular = "locusttest",
    shortname = "lotest",
    category = "locust",
    namespaced,
    status = "LocustTestStatus",
    derive = "PartialEq",
    deprecated = "locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2",
    doc = "Legacy (v1) distributed Locust load test. Deprecated: migrate to locust.io/v2."
)]
#[serde(rename_all = "camelCase")]
pub struct LocustTestSpec {
    /// Master command seed (v2: `master.command`).
    pub master_command_seed: String,

    /// Worker command seed (v2: `worker.command`).
    pub worker_command_seed: String,

    /// Number of worker pods, 1 to 500 (v2: `worker.replicas`). Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 500))]
    pub worker_replicas: i32,

    /// Locust container image.
    pub image: String,

    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Names of image pull secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,

    /// ConfigMap with the test files (v2: `testFiles.configMapRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,

    /// ConfigMap with library files (v2: `testFiles.libConfigMapRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib_config_map: Option<String>,

    /// Labels for the master and worker pods.
    #[serde(default, skip_serializing_if = "RoleMaps::is_empty")]
    pub labels: RoleMaps,

    /// Annotations for the master and worker pods.
    #[serde(default, skip_serializing_if = "RoleMaps::is_empty")]
    pub annotations: RoleMaps,

    /// Node affinity as a map of node label to required value.
    #[serde(default, skip_serializing_if = "AffinityV1::is_empty")]
    pub affinity: AffinityV1,

    /// Tolerations for tainted nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

fn default_replicas() -> i32 {
    1
}

/// A map per Locust role.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RoleMaps {
    /// Entries for the master pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub master: BTreeMap<String, String>,
    /// Entries for the worker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker: BTreeMap<String, String>,
}

impl RoleMaps {
    pub fn is_empty(&self) -> bool {
        self.master.is_empty() && self.worker.is_empty()
    }
}

/// v1 affinity: only required node affinity, as label → value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AffinityV1 {
    /// Node affinity.
    #[serde(default, skip_serializing_if = "NodeAffinityV1::is_empty")]
    pub node_affinity: NodeAffinityV1,
}

impl AffinityV1 {
    pub fn is_empty(&self) -> bool {
        self.node_affinity.is_empty()
    }
}

/// v1 node affinity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinityV1 {
    /// Node label → value every pod's node must carry.
    #[serde(
        default,
        rename = "requiredDuringSchedulingIgnoredDuringExecution",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub required: BTreeMap<String, String>,
}

impl NodeAffinityV1 {
    pub fn is_empty(&self) -> bool {
        self.required.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    #[test]
    fn derived_deprecation_warning_is_the_constant() {
        let crd = super::LocustTest::crd();
        assert_eq!(
            crd.spec.versions[0].deprecation_warning.as_deref(),
            Some(super::DEPRECATION_WARNING)
        );
    }
}
