//! The chart's values: one Rust type from which `values.yaml` (defaults,
//! commented with each field's doc), `values.schema.json` (what `helm`
//! checks before it renders) and the values reference in `docs/install.md`
//! are generated.
//!
//! Every key of the upstream Go operator's chart (v2.x) that this chart
//! also has keeps its name and meaning. Keys that mean nothing here are
//! accepted and ignored (`locustPods.metricsExporter`, `kafka` while
//! disabled); a key whose upstream value asks for behaviour this operator
//! does not have (`locustPods.affinityInjection: false`, `kafka.enabled:
//! true`, `k8s.clusterRole.enabled: false`) fails the render with a message
//! naming the replacement (the chart's `checks` template: a schema error
//! could only say "must be true"). Any other unknown key is rejected by the
//! schema (`additionalProperties: false` on every object of this chart's
//! own), and so is a quantity that is not one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, PodSecurityContext, ResourceRequirements, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use locust_operator::config::OperatorConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Values of the `locust-k8s-operator` chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[schemars(title = "locust-k8s-operator chart values")]
pub struct Values {
    /// The operator image.
    pub image: Image,
    /// Operator replicas. With leader election one reconciles and every replica serves the webhooks; 2 keeps admission and v1 conversion up while a pod is replaced.
    #[schemars(range(min = 1))]
    pub replica_count: u32,
    /// Replaces the chart name in the names of the objects.
    pub name_override: String,
    /// Replaces `<release>-<chart>` as the name of every object (the ClusterRoles, the webhook configuration and the Service the CRD converts through are named after it).
    pub fullname_override: String,
    /// Extra environment variables of the operator container (every flag has a `LOCUST_*` variable, see docs/configuration.md).
    pub extra_env: Vec<EnvVar>,
    /// Seconds the operator pod gets to stop (it finishes in-flight reconciles for at most 10 s).
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: i64,
    /// Requests and limits of the operator container.
    pub resources: ResourceRequirements,
    /// Leader election between the operator replicas.
    pub leader_election: Toggle,
    /// PodDisruptionBudget of the operator pods (rendered only with `replicaCount` > 1).
    pub pod_disruption_budget: DisruptionBudget,
    /// The operator's Prometheus endpoint (`/metrics`, always served; see docs/metrics.md).
    pub metrics: Metrics,
    /// Admission (validating) webhook and its serving certificate.
    pub webhook: Webhook,
    /// Defaults of the Locust pods the operator creates (a LocustTest's own values win).
    pub locust_pods: LocustPods,
    /// An optional OpenTelemetry collector for the tests' telemetry (`spec.observability.openTelemetry.endpoint: <fullname>-otel-collector:4317`).
    pub otel_collector: OtelCollector,
    /// The operator's ServiceAccount.
    pub service_account: ServiceAccountValues,
    /// Extra annotations of the operator pods.
    pub pod_annotations: BTreeMap<String, String>,
    /// Extra labels of the operator pods.
    pub pod_labels: BTreeMap<String, String>,
    /// Security context of the operator pods.
    pub pod_security_context: PodSecurityContext,
    /// Security context of the operator container.
    pub container_security_context: SecurityContext,
    /// Node selector of the operator pods.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the operator pods.
    pub tolerations: Vec<Toleration>,
    /// Affinity of the operator pods. Empty: nodes of the image's architectures (amd64, arm64) and Linux.
    #[schemars(with = "Option<Affinity>")]
    pub affinity: Value,
    /// Priority class of the operator pods.
    pub priority_class_name: String,
    /// The LocustTest CRD.
    pub crds: Crds,
    /// Upstream chart only: Kafka variables are not injected here; set them in a test's `env.variables` (docs/migration.md). Accepted while `enabled` is false.
    #[schemars(with = "Kafka")]
    pub kafka: Value,
    /// Upstream chart only: the operator always needs its ClusterRole (it watches every namespace).
    #[schemars(with = "K8sRbac")]
    pub k8s: Value,
}

/// The operator image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Image {
    /// Repository of the operator image.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Tag; empty: the chart's appVersion.
    pub tag: String,
    /// Image pull policy; empty: Kubernetes' default.
    #[schemars(regex(pattern = r"^(Always|IfNotPresent|Never)?$"))]
    pub pull_policy: String,
    /// Names of image pull Secrets in the release namespace.
    pub pull_secrets: Vec<String>,
}

/// A switch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// On or off.
    pub enabled: bool,
}

/// PodDisruptionBudget settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DisruptionBudget {
    /// Render the PodDisruptionBudget.
    pub enabled: bool,
    /// Pods that may be down at once (number or percentage); ignored when `minAvailable` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Pods that must stay up (number or percentage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
}

/// Metrics settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Metrics {
    /// Render the metrics Service and the metrics-reader ClusterRole.
    pub enabled: bool,
    /// Port of `/metrics` on the pod and on the Service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// HTTPS with TokenReview and SubjectAccessReview (`--metrics-secure`); false serves plain HTTP to anyone who can reach the port.
    pub secure: bool,
    /// A Prometheus Operator ServiceMonitor for the metrics Service (needs `monitoring.coreos.com/v1` on the cluster).
    pub service_monitor: ServiceMonitorValues,
}

/// ServiceMonitor settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServiceMonitorValues {
    /// Render the ServiceMonitor (and bind the metrics-reader ClusterRole nowhere: give Prometheus's ServiceAccount that role).
    pub enabled: bool,
    /// Scrape interval.
    pub interval: String,
    /// Extra labels (for a Prometheus's `serviceMonitorSelector`).
    pub labels: BTreeMap<String, String>,
}

/// Webhook settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Webhook {
    /// The validating webhook. The v1 ↔ v2 conversion webhook is always served: without it v1 LocustTests could not be stored.
    pub enabled: bool,
    /// Port of the webhook server on the pod.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Serving certificate from cert-manager (an Issuer and a Certificate in the release namespace, CA injected by cert-manager's cainjector) when both this and `webhook.enabled` are true; otherwise the operator creates and rotates its own (docs/webhook-certificates.md).
    pub cert_manager: Toggle,
}

/// Defaults of the Locust pods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocustPods {
    /// Requests and limits of every Locust container (`--pod-*`). An empty value: none.
    pub resources: PodResources,
    /// Master containers only (`--master-*`); unset keys fall back to `resources`.
    pub master_resources: PodResources,
    /// Worker containers only (`--worker-*`); unset keys fall back to `resources`.
    pub worker_resources: PodResources,
    /// RuntimeClass of the Locust pods unless a test sets `scheduling.runtimeClassName` (`--default-runtime-class-name`).
    #[schemars(
        regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"),
        length(max = 253)
    )]
    pub runtime_class_name: String,
    /// Seconds a finished test's Jobs are kept (`--job-ttl-seconds-after-finished`); empty: kept until the test is deleted.
    #[schemars(with = "TtlSeconds")]
    pub ttl_seconds_after_finished: Value,
    /// Upstream chart only. Affinity from the test's spec is always applied here; `false` fails the render.
    pub affinity_injection: bool,
    /// Upstream chart only. Tolerations from the test's spec are always applied here; `false` fails the render.
    pub tolerations_injection: bool,
    /// Upstream chart only, ignored: there is no exporter sidecar; the operator exports every test's metrics itself (docs/metrics.md).
    #[schemars(with = "BTreeMap<String, Value>")]
    pub metrics_exporter: Value,
}

/// Requests and limits as the upstream chart spells them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PodResources {
    /// Requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Quantities>,
    /// Limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Quantities>,
}

/// CPU, memory and ephemeral storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Quantities {
    /// CPU (e.g. `250m`); empty: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory (e.g. `128Mi`); empty: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Ephemeral storage (e.g. `50M`); empty: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Quantity>,
}

/// `""`, a whole number of seconds, or its decimal string.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum TtlSeconds {
    Seconds(#[schemars(range(min = 0))] u32),
    Text(#[schemars(regex(pattern = r"^[0-9]*$"))] String),
}

/// The optional OpenTelemetry collector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OtelCollector {
    /// Deploy a collector (Deployment, Service on 4317 gRPC and 4318 HTTP, ConfigMap).
    pub enabled: bool,
    /// Collector image.
    pub image: String,
    /// Collector replicas.
    #[schemars(range(min = 1))]
    pub replicas: u32,
    /// Requests and limits of the collector.
    pub resources: ResourceRequirements,
    /// The collector's configuration (YAML).
    pub config: String,
    /// Security context of the collector pods.
    pub pod_security_context: PodSecurityContext,
    /// Security context of the collector container.
    pub container_security_context: SecurityContext,
}

/// The operator's ServiceAccount.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServiceAccountValues {
    /// Create it; false: use `name`, which must exist.
    pub create: bool,
    /// Its name; empty: the full name.
    pub name: String,
    /// Its annotations (e.g. for workload identity).
    pub annotations: BTreeMap<String, String>,
}

/// The CRD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Crds {
    /// Keep the CRD (and so every LocustTest) when the release is uninstalled (`helm.sh/resource-policy: keep`).
    pub keep: bool,
}

/// Upstream `kafka`: accepted while disabled.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Kafka {
    /// Must be false: set Kafka variables in a test's `env.variables` (`true` fails the render).
    enabled: bool,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// Upstream `k8s`.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct K8sRbac {
    /// Upstream chart only; must be true.
    cluster_role: ClusterRoleToggle,
}

/// Upstream `k8s.clusterRole`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ClusterRoleToggle {
    /// Must be true: the operator watches LocustTests in every namespace (`false` fails the render).
    enabled: bool,
}

fn quantity(v: &Option<String>) -> Option<Quantity> {
    v.as_ref().map(|s| Quantity(s.clone()))
}

impl Default for Values {
    fn default() -> Self {
        let cfg = OperatorConfig::default();
        let q = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpu.to_owned())),
                ("memory".to_owned(), Quantity(memory.to_owned())),
            ])
        };
        Self {
            image: Image::default(),
            replica_count: u32::try_from(crate::deployment::REPLICAS).unwrap_or(2),
            name_override: String::new(),
            fullname_override: String::new(),
            extra_env: Vec::new(),
            termination_grace_period_seconds: 30,
            resources: ResourceRequirements {
                requests: Some(q("10m", "32Mi")),
                limits: Some(q("500m", "128Mi")),
                ..ResourceRequirements::default()
            },
            leader_election: Toggle {
                enabled: cfg.leader_elect,
            },
            pod_disruption_budget: DisruptionBudget::default(),
            metrics: Metrics::default(),
            webhook: Webhook::default(),
            locust_pods: LocustPods::default(),
            otel_collector: OtelCollector::default(),
            service_account: ServiceAccountValues::default(),
            pod_annotations: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
            pod_security_context: Values::default_pod_security_context(),
            container_security_context: restricted_container(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: Value::Object(serde_json::Map::new()),
            priority_class_name: String::new(),
            crds: Crds::default(),
            kafka: serde_json::json!({"enabled": false}),
            k8s: serde_json::json!({"clusterRole": {"enabled": true}}),
        }
    }
}

/// The container security context of the restricted Pod Security Standard.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(k8s_openapi::api::core::v1::Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        read_only_root_filesystem: Some(true),
        ..SecurityContext::default()
    }
}

impl Default for Image {
    fn default() -> Self {
        Self {
            repository: crate::OPERATOR_IMAGE_REPO.to_owned(),
            tag: String::new(),
            pull_policy: "IfNotPresent".to_owned(),
            pull_secrets: Vec::new(),
        }
    }
}

impl Default for DisruptionBudget {
    fn default() -> Self {
        Self {
            enabled: true,
            max_unavailable: Some(IntOrString::Int(1)),
            min_available: None,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let cfg = OperatorConfig::default();
        Self {
            enabled: true,
            port: cfg.metrics_bind_address.port(),
            secure: cfg.metrics_secure,
            service_monitor: ServiceMonitorValues::default(),
        }
    }
}

impl Default for ServiceMonitorValues {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: "30s".to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

impl Default for Webhook {
    fn default() -> Self {
        Self {
            enabled: true,
            port: OperatorConfig::default().webhook_port,
            cert_manager: Toggle { enabled: false },
        }
    }
}

impl Default for LocustPods {
    fn default() -> Self {
        let cfg = OperatorConfig::default();
        let quantities = |cpu: &Option<String>, memory: &Option<String>, eph: &Option<String>| {
            Some(Quantities {
                cpu: quantity(cpu),
                memory: quantity(memory),
                ephemeral_storage: quantity(eph),
            })
        };
        Self {
            resources: PodResources {
                requests: quantities(
                    &cfg.pod_cpu_request,
                    &cfg.pod_memory_request,
                    &cfg.pod_ephemeral_storage_request,
                ),
                limits: quantities(
                    &cfg.pod_cpu_limit,
                    &cfg.pod_memory_limit,
                    &cfg.pod_ephemeral_storage_limit,
                ),
            },
            master_resources: PodResources::default(),
            worker_resources: PodResources::default(),
            runtime_class_name: cfg.default_runtime_class_name.unwrap_or_default(),
            ttl_seconds_after_finished: cfg
                .job_ttl_seconds_after_finished
                .map_or_else(|| Value::String(String::new()), Value::from),
            affinity_injection: true,
            tolerations_injection: true,
            metrics_exporter: Value::Object(serde_json::Map::new()),
        }
    }
}

/// Default collector configuration: OTLP in, batched, logged.
const OTEL_CONFIG: &str = "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch: {}
exporters:
  debug: {}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
";

impl Default for OtelCollector {
    fn default() -> Self {
        let q = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpu.to_owned())),
                ("memory".to_owned(), Quantity(memory.to_owned())),
            ])
        };
        Self {
            enabled: false,
            image: "otel/opentelemetry-collector-contrib:0.145.0".to_owned(),
            replicas: 1,
            resources: ResourceRequirements {
                requests: Some(q("50m", "64Mi")),
                limits: Some(q("200m", "256Mi")),
                ..ResourceRequirements::default()
            },
            config: OTEL_CONFIG.to_owned(),
            pod_security_context: Values::default_pod_security_context(),
            container_security_context: restricted_container(),
        }
    }
}

impl Values {
    fn default_pod_security_context() -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(k8s_openapi::api::core::v1::SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..Default::default()
            }),
            ..PodSecurityContext::default()
        }
    }
}

impl Default for ServiceAccountValues {
    fn default() -> Self {
        Self {
            create: true,
            name: String::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for Crds {
    fn default() -> Self {
        Self { keep: true }
    }
}

impl Default for Toggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The defaults as JSON (what `values.yaml` holds).
pub fn defaults() -> Result<Value, serde_json::Error> {
    serde_json::to_value(Values::default())
}

/// A Kubernetes quantity (`250m`, `1Gi`, `0.5`, `1e3`), or empty (none).
pub const QUANTITY_PATTERN: &str =
    r"^$|^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// `values.schema.json`: draft 2020-12, every object of this chart's own
/// closed (`additionalProperties: false`), the k8s types as Kubernetes
/// defines them, and a quantity checked as one (k8s-openapi's schema of
/// `Quantity` accepts anything: the apiserver would check it, but the
/// operator's flags are not objects the apiserver sees).
pub fn schema() -> Result<Value, serde_json::Error> {
    let mut schema = serde_json::to_value(schemars::schema_for!(Values))?;
    if let Some(q) = schema
        .pointer_mut("/$defs/io.k8s.apimachinery.pkg.api.resource.Quantity")
        .and_then(Value::as_object_mut)
    {
        q.insert(
            "anyOf".to_owned(),
            serde_json::json!([
                {"type": "string", "pattern": QUANTITY_PATTERN},
                {"type": "number", "minimum": 0},
            ]),
        );
    }
    Ok(schema)
}
