//! The ClusterServiceVersion.
//!
//! Every value that the operator itself defines is imported from it: flags and
//! ports from `locust_operator::config` defaults, webhook routes from
//! `locust_operator::webhook`, RBAC from `locust_operator::rbac`, descriptor
//! descriptions from the CRD schema (i.e. the API types' doc comments).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, TopologySpreadConstraint,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use locust_operator::config::OperatorConfig;
use semver::Version;
use serde_json::{Value, json};

use crate::Error;
use crate::crd::version_schema;
pub use crate::deployment::{
    CONTAINER_NAME, CONVERSION_PATH, DEPLOYMENT_NAME, REPLICAS, SELECTOR_LABEL, SERVICE_ACCOUNT,
    VALIDATION_PATH, webhook_port,
};
use crate::descriptors::{
    SCHEDULE_STATUS, STATUS, V1_SPEC, descriptors, schedule_spec_descriptors, spec_descriptors,
};
use crate::releases::CsvEdges;

/// `generateName` of the validating webhook.
pub use locust_operator::webhook::VALIDATING_WEBHOOK_NAME;
/// `generateName` of the conversion webhook.
pub const CONVERSION_WEBHOOK_NAME: &str = "clocusttest.locust.io";
/// Timeout of the validating webhook, in seconds.
pub const WEBHOOK_TIMEOUT_SECONDS: i32 = 10;
/// CPU architectures the operator image is built for: the CSV's
/// `operatorframework.io/arch.*` labels and the pods' node affinity.
pub const ARCHITECTURES: [&str; 2] = ["amd64", "arm64"];
/// Operating systems the operator image is built for.
pub const OPERATING_SYSTEMS: [&str; 1] = ["linux"];
/// Lowest supported Kubernetes version.
pub const MIN_KUBE_VERSION: &str = "1.28.0";
/// OperatorHub categories.
pub const CATEGORIES: &str = "Developer Tools, Integration & Delivery";
/// Capability level: installs and upgrades seamlessly (conversion webhook, upgrade channels). Nothing more is claimed.
pub const CAPABILITIES: &str = "Seamless Upgrades";
/// Keywords.
pub const KEYWORDS: [&str; 6] = [
    "locust",
    "load testing",
    "performance testing",
    "distributed testing",
    "stress testing",
    "ci",
];

/// The operator's own configuration defaults, from which args and ports derive.
fn config() -> OperatorConfig {
    OperatorConfig::default()
}

/// Name of the CSV of `version`.
pub fn csv_name(version: &Version) -> String {
    format!("{}.v{version}", crate::PACKAGE)
}

/// Everything the CSV of one bundle depends on.
#[derive(Clone, Debug)]
pub struct CsvInputs<'a> {
    /// Bundle version.
    pub version: &'a Version,
    /// Operator image.
    pub operator_image: String,
    /// Channels of this release.
    pub channels: &'a [String],
    /// `createdAt`.
    pub created_at: &'a str,
    /// Upgrade edges.
    pub edges: CsvEdges,
    /// The bundle's CRD.
    pub crd: &'a CustomResourceDefinition,
    /// The bundle's LocustSchedule CRD.
    pub schedule_crd: &'a CustomResourceDefinition,
    /// The `alm-examples` annotation.
    pub alm_examples: String,
    /// Markdown description.
    pub description: String,
    /// Base64 SVG icon.
    pub icon_base64: String,
}

/// The container arguments: the operator's defaults, spelled out.
pub fn container_args() -> Vec<String> {
    let cfg = config();
    vec![
        format!("--leader-elect={}", cfg.leader_elect),
        format!(
            "--health-probe-bind-address={}",
            cfg.health_probe_bind_address
        ),
        format!("--metrics-bind-address={}", cfg.metrics_bind_address),
        format!("--webhook-port={}", cfg.webhook_port),
    ]
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpu.to_owned())),
        ("memory".to_owned(), Quantity(memory.to_owned())),
    ])
}

fn field_ref_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn port(name: &str, number: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(number),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn http_probe(path: &str, port: u16, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(port)),
            scheme: Some("HTTP".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

fn node_requirement(key: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: "In".to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

/// The `operatorframework.io/{arch,os}.*` labels.
pub fn platform_labels() -> Value {
    let mut labels = serde_json::Map::new();
    for arch in ARCHITECTURES {
        labels.insert(
            format!("operatorframework.io/arch.{arch}"),
            json!("supported"),
        );
    }
    for os in OPERATING_SYSTEMS {
        labels.insert(format!("operatorframework.io/os.{os}"), json!("supported"));
    }
    Value::Object(labels)
}

/// The operator Deployment's spec.
pub fn deployment_spec(image: &str) -> DeploymentSpec {
    let cfg = config();
    let labels = BTreeMap::from([(SELECTOR_LABEL.0.to_owned(), SELECTOR_LABEL.1.to_owned())]);
    let selector = LabelSelector {
        match_labels: Some(labels.clone()),
        ..LabelSelector::default()
    };
    let health_port = cfg.health_probe_bind_address.port();
    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(image.to_owned()),
        args: Some(container_args()),
        env: Some(vec![
            // The operator's namespace, where it keeps its leader-election Lease.
            field_ref_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![
            port("webhook-server", cfg.webhook_port),
            port(
                crate::monitoring::PORT_NAME,
                cfg.metrics_bind_address.port(),
            ),
            port("health", health_port),
        ]),
        liveness_probe: Some(http_probe("/healthz", health_port, 15, 20)),
        readiness_probe: Some(http_probe("/readyz", health_port, 5, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities("10m", "32Mi")),
            limits: Some(quantities("500m", "128Mi")),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    DeploymentSpec {
        replicas: Some(REPLICAS),
        selector: selector.clone(),
        strategy: Some(DeploymentStrategy {
            type_: Some("RollingUpdate".to_owned()),
            rolling_update: Some(RollingUpdateDeployment {
                max_unavailable: Some(IntOrString::Int(0)),
                max_surge: Some(IntOrString::Int(1)),
            }),
        }),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    "kubectl.kubernetes.io/default-container".to_owned(),
                    CONTAINER_NAME.to_owned(),
                )])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                service_account_name: Some(SERVICE_ACCOUNT.to_owned()),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".to_owned(),
                        ..SeccompProfile::default()
                    }),
                    ..PodSecurityContext::default()
                }),
                // Only nodes the image runs on, as the arch/os labels promise.
                affinity: Some(Affinity {
                    node_affinity: Some(NodeAffinity {
                        required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                            node_selector_terms: vec![NodeSelectorTerm {
                                match_expressions: Some(vec![
                                    node_requirement("kubernetes.io/arch", &ARCHITECTURES),
                                    node_requirement("kubernetes.io/os", &OPERATING_SYSTEMS),
                                ]),
                                ..NodeSelectorTerm::default()
                            }],
                        }),
                        ..NodeAffinity::default()
                    }),
                    ..Affinity::default()
                }),
                topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "kubernetes.io/hostname".to_owned(),
                    // Single-node clusters must still run both replicas.
                    when_unsatisfiable: "ScheduleAnyway".to_owned(),
                    label_selector: Some(selector),
                    ..TopologySpreadConstraint::default()
                }]),
                termination_grace_period_seconds: Some(30),
                containers: vec![container],
                ..PodSpec::default()
            }),
        },
        ..DeploymentSpec::default()
    }
}

/// Top-level description of a CRD version's schema (the kind's doc comment).
fn kind_description(schema: &Value, version: &str) -> Result<String, Error> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Crd(format!("version {version} has no description")))
}

/// The owned CRD descriptions: LocustTest v2 first, then v1, then
/// LocustSchedule.
pub fn owned_crds(
    crd: &CustomResourceDefinition,
    schedule_crd: &CustomResourceDefinition,
) -> Result<Value, Error> {
    let resources = json!([
        {"kind": "Job", "name": "", "version": "v1"},
        {"kind": "Pod", "name": "", "version": "v1"},
        {"kind": "Service", "name": "", "version": "v1"},
    ]);
    let v2 = version_schema(crd, "v2")?;
    let v1 = version_schema(crd, "v1")?;
    let schedule_version = locust_operator::crd::SCHEDULE_VERSION;
    let schedule = version_schema(schedule_crd, schedule_version)?;
    Ok(json!([
        {
            "name": locust_operator::api::CRD_NAME,
            "version": "v2",
            "kind": locust_operator::api::KIND,
            "displayName": "Locust Test",
            "description": kind_description(&v2, "v2")?,
            "resources": resources,
            "specDescriptors": spec_descriptors(&v2)?,
            "statusDescriptors": descriptors(&v2, "status", STATUS)?,
        },
        {
            "name": locust_operator::api::CRD_NAME,
            "version": "v1",
            "kind": locust_operator::api::KIND,
            "displayName": "Locust Test (v1, deprecated)",
            "description": kind_description(&v1, "v1")?,
            "resources": resources,
            "specDescriptors": descriptors(&v1, "spec", V1_SPEC)?,
            "statusDescriptors": descriptors(&v1, "status", STATUS)?,
        },
        {
            "name": locust_operator::api::SCHEDULE_CRD_NAME,
            "version": schedule_version,
            "kind": locust_operator::api::SCHEDULE_KIND,
            "displayName": "Locust Schedule",
            "description": kind_description(&schedule, schedule_version)?,
            "resources": [{"kind": locust_operator::api::KIND, "name": "", "version": "v2"}],
            "specDescriptors": schedule_spec_descriptors(&schedule)?,
            "statusDescriptors": descriptors(&schedule, "status", SCHEDULE_STATUS)?,
        },
    ]))
}

/// The webhook definitions: conversion first, then validation. Ports and
/// paths are the operator's.
pub fn webhook_definitions() -> Value {
    let port = webhook_port();
    json!([
        {
            "type": "ConversionWebhook",
            "generateName": CONVERSION_WEBHOOK_NAME,
            "deploymentName": DEPLOYMENT_NAME,
            "containerPort": port,
            "targetPort": port,
            "webhookPath": CONVERSION_PATH,
            "conversionCRDs": [locust_operator::api::CRD_NAME],
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
        },
        {
            "type": "ValidatingAdmissionWebhook",
            "generateName": VALIDATING_WEBHOOK_NAME,
            "deploymentName": DEPLOYMENT_NAME,
            "containerPort": port,
            "targetPort": port,
            "webhookPath": VALIDATION_PATH,
            "rules": validating_rules(),
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
            "admissionReviewVersions": ["v1"],
        },
    ])
}

/// What the validating webhook is called for: creates and updates of v2
/// LocustTests (v1 objects reach it converted) and of LocustSchedules.
pub fn validating_rules() -> Vec<Value> {
    [
        ("v2", locust_operator::api::PLURAL),
        (
            locust_operator::crd::SCHEDULE_VERSION,
            locust_operator::api::SCHEDULE_PLURAL,
        ),
    ]
    .into_iter()
    .map(|(version, plural)| {
        json!({
            "apiGroups": [locust_operator::api::GROUP],
            "apiVersions": [version],
            "resources": [plural],
            "operations": ["CREATE", "UPDATE"],
        })
    })
    .collect()
}

/// The install modes: AllNamespaces only (the operator watches every
/// namespace, and OLM requires it for a conversion webhook).
pub fn install_modes() -> Value {
    json!([
        {"type": "OwnNamespace", "supported": false},
        {"type": "SingleNamespace", "supported": false},
        {"type": "MultiNamespace", "supported": false},
        {"type": "AllNamespaces", "supported": true},
    ])
}

/// `stable` if the release is in the stable channel, else `alpha`.
pub fn maturity(channels: &[String]) -> &'static str {
    if channels.iter().any(|c| c == "stable") {
        "stable"
    } else {
        "alpha"
    }
}

/// The ClusterServiceVersion as JSON.
pub fn csv(inputs: &CsvInputs<'_>) -> Result<Value, Error> {
    let version = inputs.version;
    let mut annotations = json!({
        "alm-examples": inputs.alm_examples,
        "capabilities": CAPABILITIES,
        "categories": CATEGORIES,
        "containerImage": inputs.operator_image,
        "createdAt": inputs.created_at,
        "description": "Runs distributed Locust load tests on Kubernetes, each declared as a LocustTest resource.",
        "features.operators.openshift.io/cnf": "false",
        "features.operators.openshift.io/cni": "false",
        "features.operators.openshift.io/csi": "false",
        // Images are referenced by tag, not digest.
        "features.operators.openshift.io/disconnected": "false",
        "features.operators.openshift.io/fips-compliant": "false",
        "features.operators.openshift.io/proxy-aware": "false",
        "features.operators.openshift.io/tls-profiles": "false",
        "features.operators.openshift.io/token-auth-aws": "false",
        "features.operators.openshift.io/token-auth-azure": "false",
        "features.operators.openshift.io/token-auth-gcp": "false",
        "olm.skipRange": inputs.edges.skip_range,
        "operatorframework.io/suggested-namespace": crate::SUGGESTED_NAMESPACE,
        "repository": crate::REPOSITORY,
        "support": "Community",
    });
    // Keep the object sorted even if serde_json's map preserves order.
    annotations = sort_keys(annotations);
    let rbac_cluster = serde_json::to_value(locust_operator::rbac::cluster_rules())?;
    let rbac_namespaced = serde_json::to_value(locust_operator::rbac::namespaced_rules())?;
    let mut spec = json!({
        "displayName": "Locust Kubernetes Operator",
        "description": inputs.description,
        "version": version.to_string(),
        "maturity": maturity(inputs.channels),
        "minKubeVersion": MIN_KUBE_VERSION,
        "keywords": KEYWORDS,
        "icon": [{"base64data": inputs.icon_base64, "mediatype": crate::description::ICON_MEDIATYPE}],
        "links": [
            {"name": "Documentation", "url": "https://abdelrhmanhamouda.github.io/locust-k8s-operator/"},
            {"name": "Source Code", "url": crate::REPOSITORY},
            {"name": "Locust", "url": "https://locust.io"},
        ],
        "maintainers": [{"name": "Abdelrhman Hamouda", "email": "abdelrhman.ahmed@outlook.com"}],
        "provider": {"name": "Abdelrhman Hamouda", "url": "https://github.com/AbdelrhmanHamouda"},
        "customresourcedefinitions": {"owned": owned_crds(inputs.crd, inputs.schedule_crd)?},
        "installModes": install_modes(),
        "install": {
            "strategy": "deployment",
            "spec": {
                "deployments": [{
                    "name": DEPLOYMENT_NAME,
                    "spec": serde_json::to_value(deployment_spec(&inputs.operator_image))?,
                }],
                "clusterPermissions": [{"serviceAccountName": SERVICE_ACCOUNT, "rules": rbac_cluster}],
                "permissions": [{"serviceAccountName": SERVICE_ACCOUNT, "rules": rbac_namespaced}],
            },
        },
        "webhookdefinitions": webhook_definitions(),
        "relatedImages": [
            {"name": "locust-k8s-operator", "image": inputs.operator_image},
            {"name": "locust", "image": crate::DEFAULT_LOCUST_IMAGE},
        ],
    });
    if let Some(map) = spec.as_object_mut() {
        if let Some(r) = &inputs.edges.replaces {
            map.insert("replaces".to_owned(), json!(csv_name(r)));
        }
        if !inputs.edges.skips.is_empty() {
            let skips: Vec<String> = inputs.edges.skips.iter().map(csv_name).collect();
            map.insert("skips".to_owned(), json!(skips));
        }
    }
    Ok(sort_keys(json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "ClusterServiceVersion",
        "metadata": {
            "name": csv_name(version),
            "annotations": annotations,
            "labels": platform_labels(),
        },
        "spec": spec,
    })))
}

/// Recursively sorts object keys (a no-op unless serde_json preserves order).
pub fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptors::{CONDITIONS, PHASE, POD_COUNT, PULL_POLICY, RESOURCES, TEXT};
    use clap::Parser;

    fn test_csv() -> Value {
        let crd = crate::crd::bundle_crd().unwrap();
        let schedule_crd = crate::crd::bundle_schedule_crd().unwrap();
        let version = Version::new(2, 0, 0);
        let channels = vec!["alpha".to_owned(), "stable".to_owned()];
        let samples = crate::samples::load(&crate::workspace_root()).unwrap();
        csv(&CsvInputs {
            version: &version,
            operator_image: "ghcr.io/abdelrhmanhamouda/locust-k8s-operator:2.0.0".to_owned(),
            channels: &channels,
            created_at: "2026-01-01T00:00:00Z",
            edges: CsvEdges {
                replaces: None,
                skips: vec![],
                skip_range: "<2.0.0".to_owned(),
            },
            crd: &crd,
            schedule_crd: &schedule_crd,
            alm_examples: crate::samples::alm_examples(&samples).unwrap(),
            description: "text\n".to_owned(),
            icon_base64: crate::description::icon_base64(),
        })
        .unwrap()
    }

    #[test]
    fn install_modes_all_namespaces_only() {
        let csv = test_csv();
        let modes = csv["spec"]["installModes"].as_array().unwrap();
        assert_eq!(modes.len(), 4);
        for m in modes {
            assert_eq!(m["supported"], m["type"] == "AllNamespaces", "{m}");
        }
    }

    #[test]
    fn webhooks_match_the_operator_routes_and_port() {
        let csv = test_csv();
        let defs = csv["spec"]["webhookdefinitions"].as_array().unwrap();
        let port = u64::from(locust_operator::webhook::DEFAULT_PORT);
        assert_eq!(u64::from(OperatorConfig::default().webhook_port), port);
        let conv = defs
            .iter()
            .find(|d| d["type"] == "ConversionWebhook")
            .unwrap();
        assert_eq!(conv["webhookPath"], "/convert");
        assert_eq!(conv["webhookPath"], locust_operator::webhook::CONVERT_PATH);
        assert_eq!(conv["conversionCRDs"], json!(["locusttests.locust.io"]));
        assert_eq!(conv["containerPort"], port);
        assert_eq!(conv["targetPort"], port);
        assert_eq!(conv["deploymentName"], DEPLOYMENT_NAME);
        assert_eq!(conv["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(conv["sideEffects"], "None");
        let val = defs
            .iter()
            .find(|d| d["type"] == "ValidatingAdmissionWebhook")
            .unwrap();
        assert_eq!(val["generateName"], "vlocusttest.locust.io");
        assert_eq!(val["webhookPath"], "/validate-locust-io-v2-locusttest");
        assert_eq!(val["webhookPath"], locust_operator::webhook::VALIDATE_PATH);
        assert_eq!(val["containerPort"], port);
        assert_eq!(val["targetPort"], port);
        assert_eq!(val["failurePolicy"], "Fail");
        assert_eq!(val["timeoutSeconds"], 10);
        // The server gives up on a request no later than the API server does.
        assert!(
            locust_operator::webhook::REQUEST_TIMEOUT.as_secs()
                <= u64::try_from(WEBHOOK_TIMEOUT_SECONDS).unwrap()
        );
        assert_eq!(
            val["rules"],
            json!([
                {"apiGroups": ["locust.io"], "apiVersions": ["v2"], "resources": ["locusttests"], "operations": ["CREATE", "UPDATE"]},
                {"apiGroups": ["locust.io"], "apiVersions": ["v1alpha1"], "resources": ["locustschedules"], "operations": ["CREATE", "UPDATE"]},
            ])
        );
    }

    #[test]
    fn deployment_matches_the_operator_config() {
        let csv = test_csv();
        let d = &csv["spec"]["install"]["spec"]["deployments"][0];
        assert_eq!(d["name"], "locust-k8s-operator");
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 2);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "locust-k8s-operator");
        assert_eq!(
            pod["securityContext"],
            json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
        );
        assert!(
            pod.get("automountServiceAccountToken").is_none(),
            "the operator needs its token"
        );
        assert_eq!(
            pod["topologySpreadConstraints"][0]["topologyKey"],
            "kubernetes.io/hostname"
        );
        let c = &pod["containers"][0];
        assert_eq!(
            c["image"],
            "ghcr.io/abdelrhmanhamouda/locust-k8s-operator:2.0.0"
        );
        assert_eq!(
            c["args"],
            json!([
                "--leader-elect=true",
                "--health-probe-bind-address=0.0.0.0:8081",
                "--metrics-bind-address=0.0.0.0:8080",
                "--webhook-port=9443"
            ])
        );
        let ports: Vec<(String, i64)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["containerPort"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            vec![
                ("webhook-server".to_owned(), 9443),
                ("metrics".to_owned(), 8080),
                ("health".to_owned(), 8081)
            ]
        );
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], 8081);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8081);
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}})
        );
        assert_eq!(
            c["securityContext"],
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true})
        );
        assert_eq!(
            c["env"],
            json!([{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}])
        );
    }

    /// The container args parse with the operator's own flag definitions and
    /// change nothing: they only spell out the defaults.
    #[test]
    fn args_are_valid_operator_flags() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: OperatorConfig,
        }
        let args = container_args();
        let parsed =
            Cli::try_parse_from(std::iter::once("operator".to_owned()).chain(args)).unwrap();
        assert_eq!(parsed.config, OperatorConfig::default());
    }

    #[test]
    fn rbac_equals_the_operator_rules() {
        let csv = test_csv();
        let spec = &csv["spec"]["install"]["spec"];
        for (key, rules) in [
            ("clusterPermissions", locust_operator::rbac::cluster_rules()),
            ("permissions", locust_operator::rbac::namespaced_rules()),
        ] {
            assert_eq!(spec[key][0]["serviceAccountName"], SERVICE_ACCOUNT, "{key}");
            assert_eq!(
                spec[key][0]["rules"],
                serde_json::to_value(rules).unwrap(),
                "{key}"
            );
        }
    }

    #[test]
    fn descriptors_come_from_the_schema() {
        let csv = test_csv();
        let owned = csv["spec"]["customresourcedefinitions"]["owned"]
            .as_array()
            .unwrap();
        assert_eq!(owned.len(), 3);
        let schedule = &owned[2];
        assert_eq!(
            (schedule["version"].as_str(), schedule["kind"].as_str()),
            (Some("v1alpha1"), Some("LocustSchedule"))
        );
        assert_eq!(schedule["name"], "locustschedules.locust.io");
        assert_eq!(schedule["resources"][0]["kind"], "LocustTest");
        let v2 = &owned[0];
        assert_eq!(
            (v2["version"].as_str(), v2["kind"].as_str()),
            (Some("v2"), Some("LocustTest"))
        );
        let find = |list: &Value, path: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|d| d["path"] == path)
                .cloned()
                .unwrap()
        };
        let v1 = &owned[1];
        assert_eq!(v1["version"], "v1");
        for (entry, list, path, descriptor) in [
            (v2, "specDescriptors", "image", TEXT),
            (v2, "specDescriptors", "worker.replicas", POD_COUNT),
            (v2, "specDescriptors", "master.resources", RESOURCES),
            (v2, "specDescriptors", "worker.resources", RESOURCES),
            (v2, "specDescriptors", "imagePullPolicy", PULL_POLICY),
            (v2, "statusDescriptors", "phase", PHASE),
            (v2, "statusDescriptors", "conditions", CONDITIONS),
            (v1, "specDescriptors", "workerReplicas", POD_COUNT),
        ] {
            assert_eq!(
                find(&entry[list], path)["x-descriptors"],
                json!([descriptor]),
                "{list} {path}"
            );
        }
        assert!(
            find(&v2["specDescriptors"], "worker.replicas")["description"]
                .as_str()
                .unwrap()
                .contains("worker pods")
        );
        // Every top-level spec field of each example has a descriptor in its own version's entry.
        for sample in crate::samples::load(&crate::workspace_root()).unwrap() {
            let version = sample.api_version().rsplit('/').next().unwrap().to_owned();
            let owned_entry = owned
                .iter()
                .find(|o| o["version"] == version.as_str())
                .unwrap();
            for key in sample.object["spec"].as_object().unwrap().keys() {
                assert!(
                    owned_entry["specDescriptors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["path"] == key.as_str()),
                    "{version}: spec.{key} has no descriptor"
                );
            }
        }
    }

    #[test]
    fn metadata_fields() {
        let csv = test_csv();
        let a = &csv["metadata"]["annotations"];
        assert_eq!(csv["metadata"]["name"], "locust-k8s-operator.v2.0.0");
        assert_eq!(a["capabilities"], "Seamless Upgrades");
        assert_eq!(a["olm.skipRange"], "<2.0.0");
        assert_eq!(a["createdAt"], "2026-01-01T00:00:00Z");
        assert_eq!(a["features.operators.openshift.io/disconnected"], "false");
        assert_eq!(
            a["operatorframework.io/suggested-namespace"],
            "locust-operator"
        );
        assert!(a.get("operators.operatorframework.io/builder").is_none());
        assert_eq!(
            csv["metadata"]["labels"],
            json!({
                "operatorframework.io/arch.amd64": "supported",
                "operatorframework.io/arch.arm64": "supported",
                "operatorframework.io/os.linux": "supported",
            })
        );
        let terms = &csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["affinity"]
            ["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(
            terms,
            &json!([{"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            ]}])
        );
        assert_eq!(csv["spec"]["minKubeVersion"], "1.28.0");
        assert_eq!(csv["spec"]["maturity"], "stable");
        assert!(csv["spec"].get("replaces").is_none());
        assert_eq!(
            csv["spec"]["relatedImages"],
            json!([
                {"name": "locust-k8s-operator", "image": "ghcr.io/abdelrhmanhamouda/locust-k8s-operator:2.0.0"},
                {"name": "locust", "image": "locustio/locust:2.43.1"}
            ])
        );
        assert_eq!(maturity(&["alpha".to_owned()]), "alpha");
    }

    #[test]
    fn alm_examples_parse_and_equal_the_samples() {
        let csv = test_csv();
        let examples: Value = serde_json::from_str(
            csv["metadata"]["annotations"]["alm-examples"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let samples = crate::samples::load(&crate::workspace_root()).unwrap();
        let expected: Vec<Value> = samples.into_iter().map(|s| s.object).collect();
        assert_eq!(examples, Value::Array(expected));
        // Each example is a served version of an owned CRD.
        let owned = &csv["spec"]["customresourcedefinitions"]["owned"];
        for e in examples.as_array().unwrap() {
            let version = e["apiVersion"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            assert!(
                owned
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["version"] == version && o["kind"] == e["kind"])
            );
        }
    }
}
