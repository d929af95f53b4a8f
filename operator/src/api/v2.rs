//! `locust.io/v2` — the stored, current version of the `LocustTest` API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::LocustTestStatus;

/// Desired state of a distributed Locust load test. A test is immutable: the
/// operator builds its master Job, worker Job and master Service once, from the
/// spec as it was at creation; later spec changes are reported through the
/// `SpecDrifted` condition and otherwise ignored (delete and recreate the test
/// to apply them).
// The printer columns are the same in both versions: `crd::PRINTER_COLUMNS`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "locust.io",
    version = "v2",
    kind = "LocustTest",
    plural = "locusttests",
    singular = "locusttest",
    shortname = "lotest",
    category = "locust",
    namespaced,
    status = "LocustTestStatus",
    derive = "PartialEq",
    doc = "A distributed Locust load test: one master and N workers run as Kubernetes Jobs."
)]
#[serde(rename_all = "camelCase")]
pub struct LocustTestSpec {
    /// Container image that runs Locust for the master and the workers, e.g. `locustio/locust:2.43.1`.
    pub image: String,

    /// When the kubelet pulls the image. Defaults to Kubernetes' own rule (`Always` for `:latest`, else `IfNotPresent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets in the test's namespace used to pull the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// The Locust master: one pod that coordinates the workers and serves the web UI and statistics.
    pub master: MasterSpec,

    /// The Locust workers: pods that generate the load.
    pub worker: WorkerSpec,

    /// ConfigMaps holding the locustfile(s) and helper libraries, and where they are mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_files: Option<TestFilesSpec>,

    /// Where the master and worker pods may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,

    /// Environment variables and secret files given to every Locust container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvSpec>,

    /// Extra pod volumes (PVC, emptyDir, configMap, secret, projected, hostPath, ...). Mount them with `volumeMounts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,

    /// Mounts of `volumes` into the Locust containers, each on the master, the workers or both. A `mountPath` must neither equal nor contain nor lie inside the mounted test files' paths, a secret mount's path, or the path of another volume mount in the same container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<TargetedVolumeMount>,

    /// Pod and container security contexts. When unset the operator applies a `restricted` Pod Security profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,

    /// Metrics and traces export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,

    /// Pass/fail criteria checked against the final statistics of the run. Any breach turns the
    /// test `Failed` (condition `TestCompleted`, reason `ThresholdsBreached`); a threshold whose
    /// number the master did not report fails the test with reason `ResultsUnavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,

    /// Report files the master writes at the end of the run (`--html`, `--json-file`, `--csv`).
    /// Every path must lie under a `volumeMounts` entry that targets the master (or both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,

    /// Settings of the master's web UI and REST API (port 8089), which the operator reads the
    /// statistics from.
    #[serde(default, rename = "webUI", skip_serializing_if = "Option::is_none")]
    pub web_ui: Option<WebUiSpec>,
}

/// Pass/fail thresholds, evaluated on the final statistics ("Aggregated" row) of the run.
/// Unset thresholds are not checked.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdsSpec {
    /// Highest accepted share of failed requests, from 0 to 1 (e.g. `0.01` = 1 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_fail_ratio: Option<f64>,

    /// Highest accepted mean response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_average_response_time: Option<f64>,

    /// Highest accepted median (p50) response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_p50_response_time: Option<f64>,

    /// Highest accepted 90th percentile response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_p90_response_time: Option<f64>,

    /// Highest accepted 95th percentile response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_p95_response_time: Option<f64>,

    /// Highest accepted 99th percentile response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_p99_response_time: Option<f64>,

    /// Lowest accepted throughput over the run, in requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub min_requests_per_second: Option<f64>,
}

/// Report files written by the master.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputSpec {
    /// Locust's HTML report (`--html <path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_report: Option<FileOutput>,

    /// Final statistics as JSON (`--json-file <path>`; Locust adds the `.json` suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_file: Option<FileOutput>,

    /// CSV statistics (`--csv <prefix>`: `<prefix>_stats.csv`, `<prefix>_failures.csv`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOutput>,
}

/// One report file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOutput {
    /// Write the file. Default false.
    #[serde(default)]
    pub enabled: bool,

    /// Absolute path of the file in the master container, under a volume mount of the master.
    /// Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub path: Option<String>,
}

/// CSV reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsvOutput {
    /// Write the CSV files. Default false.
    #[serde(default)]
    pub enabled: bool,

    /// Absolute path prefix of the CSV files in the master container, under a volume mount of
    /// the master, e.g. `/results/run` → `/results/run_stats.csv`. Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub prefix: Option<String>,
}

impl FileOutput {
    /// The path, when the file is enabled.
    pub fn active_path(&self) -> Option<&str> {
        self.enabled.then_some(self.path.as_deref()).flatten()
    }
}

impl CsvOutput {
    /// The prefix, when CSV output is enabled.
    pub fn active_prefix(&self) -> Option<&str> {
        self.enabled.then_some(self.prefix.as_deref()).flatten()
    }
}

impl OutputSpec {
    /// `(field, path)` of every enabled output, in a fixed order.
    pub fn active_paths(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if let Some(p) = self.html_report.as_ref().and_then(FileOutput::active_path) {
            out.push(("spec.output.htmlReport.path", p));
        }
        if let Some(p) = self.json_file.as_ref().and_then(FileOutput::active_path) {
            out.push(("spec.output.jsonFile.path", p));
        }
        if let Some(p) = self.csv.as_ref().and_then(CsvOutput::active_prefix) {
            out.push(("spec.output.csv.prefix", p));
        }
        out
    }
}

/// The master's web UI.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebUiSpec {
    /// URL prefix of the web UI and REST API (`--web-base-path`), e.g. `/locust`. The operator
    /// reads the statistics under this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
}

impl LocustTestSpec {
    /// The web base path without a trailing slash (`""` when unset), prefixed to REST paths.
    pub fn web_base_path(&self) -> String {
        let raw = self
            .web_ui
            .as_ref()
            .and_then(|w| w.base_path.as_deref())
            .unwrap_or("");
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() || trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        }
    }
}

/// Image pull policy of the Locust containers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

fn default_true() -> bool {
    true
}

/// The Locust master.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterSpec {
    /// Base command of the master, split like a shell would (quotes respected). If it starts with an
    /// option (`--locustfile ...`) it is passed as arguments to the image's `locust` entrypoint;
    /// otherwise (`locust -f ...`) it replaces the entrypoint. The operator appends
    /// `[--otel] --master --master-port=5557 --expect-workers=N [--autostart] [--autoquit T]
    /// --enable-rebalancing --only-summary [--web-base-path P] [--html F] [--json-file F]
    /// [--csv P]` and then `extraArgs`.
    pub command: String,

    /// CPU, memory and ephemeral storage of the master container. When it sets any request or
    /// limit it replaces the operator's defaults entirely: a key left out has no value (leave
    /// out `limits.cpu` for no CPU limit). Without it the operator's master defaults apply,
    /// each falling back to its unified pod default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Labels added to the master pod. They may replace the `app` label (the test name by
    /// default); the operator's other labels keep their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations added to the master pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Start the test as soon as all expected workers are connected (`--autostart`). Default true.
    #[serde(default = "default_true")]
    pub autostart: bool,

    /// Quit the master after the test ends (`--autoquit`), which lets the Job complete.
    #[serde(default)]
    pub autoquit: AutoquitSpec,

    /// Extra command-line arguments appended last to the master command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
}

/// `--autoquit` settings of the master.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoquitSpec {
    /// Pass `--autoquit` to the master. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// Seconds the master stays up after the test ends before quitting. Default 60. Keep it
    /// longer than the operator's stats interval (default 10 s) so the final statistics are
    /// read before the master exits.
    #[serde(default = "default_autoquit_timeout")]
    #[schemars(range(min = 0))]
    pub timeout: i32,
}

fn default_autoquit_timeout() -> i32 {
    60
}

impl Default for AutoquitSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: default_autoquit_timeout(),
        }
    }
}

/// The Locust workers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Base command of each worker, split like a shell would. The operator appends
    /// `[--otel] --worker --master-host=<service> --master-port=5557 [--processes N]` and then `extraArgs`.
    pub command: String,

    /// Number of worker pods (1 to 500).
    #[schemars(range(min = 1, max = 500))]
    pub replicas: i32,

    /// CPU, memory and ephemeral storage of each worker container. When it sets any request or
    /// limit it replaces the operator's defaults entirely: a key left out has no value (leave
    /// out `limits.cpu` for no CPU limit, so the workers are never throttled). Without it the
    /// operator's worker defaults apply, each falling back to its unified pod default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Labels added to the worker pods. They may replace the `app` label (the test name by
    /// default); the operator's other labels keep their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations added to the worker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Extra command-line arguments appended last to the worker command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,

    /// Locust processes per worker pod (`--processes N`): each pod forks N worker processes,
    /// all connecting to the master. Unset = one process per pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub processes_per_pod: Option<i32>,
}

/// Test scripts delivered from ConfigMaps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestFilesSpec {
    /// ConfigMap with the locustfile(s), mounted at `srcMountPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<String>,

    /// ConfigMap with helper libraries, mounted at `libMountPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib_config_map_ref: Option<String>,

    /// Absolute path where `configMapRef` is mounted. Default `/lotest/src`. While `configMapRef` is set, no other mount may be at, above or inside it.
    #[serde(default = "default_src_mount_path")]
    pub src_mount_path: String,

    /// Absolute path where `libConfigMapRef` is mounted. Default `/opt/locust/lib`. While `libConfigMapRef` is set, no other mount may be at, above or inside it.
    #[serde(default = "default_lib_mount_path")]
    pub lib_mount_path: String,
}

pub const DEFAULT_SRC_MOUNT_PATH: &str = "/lotest/src";
pub const DEFAULT_LIB_MOUNT_PATH: &str = "/opt/locust/lib";

fn default_src_mount_path() -> String {
    DEFAULT_SRC_MOUNT_PATH.to_owned()
}

fn default_lib_mount_path() -> String {
    DEFAULT_LIB_MOUNT_PATH.to_owned()
}

impl Default for TestFilesSpec {
    fn default() -> Self {
        Self {
            config_map_ref: None,
            lib_config_map_ref: None,
            src_mount_path: default_src_mount_path(),
            lib_mount_path: default_lib_mount_path(),
        }
    }
}

/// Scheduling constraints applied to the master and worker pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Node, pod and anti-pod affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Tolerations for tainted nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// RuntimeClass of the pods (a RuntimeClass name, e.g. `gvisor`). Unset = the operator's
    /// default runtime class, if any; `""` = no runtime class even when the operator has a
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub runtime_class_name: Option<String>,
}

/// Environment injected into every Locust container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvSpec {
    /// ConfigMaps whose keys all become environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_refs: Vec<EnvSourceRef>,

    /// Secrets whose keys all become environment variables. Values never appear in the operator's logs, Events or status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_refs: Vec<EnvSourceRef>,

    /// Individual variables (literal values or `valueFrom` references).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<EnvVar>,

    /// Secrets mounted as files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_mounts: Vec<SecretMount>,
}

/// A ConfigMap or Secret imported whole as environment variables.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvSourceRef {
    /// Name of the ConfigMap or Secret in the test's namespace.
    pub name: String,

    /// Prefix prepended to every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A Secret mounted as files into every Locust container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretMount {
    /// Name of the Secret in the test's namespace.
    pub name: String,

    /// Absolute directory where the Secret's keys appear as files. It must neither equal nor contain nor lie inside the mounted test files' paths or another mount's path.
    pub mount_path: String,

    /// Mount read-only. Default true.
    #[serde(default = "default_true")]
    pub read_only: bool,
}

/// Which Locust pods get a volume mount.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountTarget {
    Master,
    Worker,
    #[default]
    Both,
}

impl MountTarget {
    pub fn includes_master(self) -> bool {
        matches!(self, MountTarget::Master | MountTarget::Both)
    }
    pub fn includes_worker(self) -> bool {
        matches!(self, MountTarget::Worker | MountTarget::Both)
    }
}

/// A core VolumeMount plus the role(s) it applies to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetedVolumeMount {
    #[serde(flatten)]
    pub mount: VolumeMount,

    /// `master`, `worker` or `both` (default).
    #[serde(default)]
    #[schemars(length(max = 6))]
    pub target: MountTarget,
}

/// Security contexts of the Locust pods and containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySpec {
    /// Replaces the operator's default pod security context (runAsNonRoot, seccomp RuntimeDefault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,

    /// Replaces the operator's default container security context (no privilege escalation, all capabilities dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

/// Observability settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    /// Locust's native OpenTelemetry export (`--otel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OpenTelemetrySpec>,
}

/// OTLP protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OtelProtocol {
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtelProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OtelProtocol::Grpc => "grpc",
            OtelProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// OpenTelemetry export settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetrySpec {
    /// Run Locust with `--otel` and inject the `OTEL_*` environment.
    #[serde(default)]
    pub enabled: bool,

    /// OTLP collector endpoint, e.g. `otel-collector.monitoring:4317`. Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// OTLP protocol: `grpc` (default) or `http/protobuf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtelProtocol>,

    /// Use a plain-text connection to the collector (`OTEL_EXPORTER_OTLP_INSECURE=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,

    /// Further OpenTelemetry SDK variables (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_env_vars: BTreeMap<String, String>,
}
