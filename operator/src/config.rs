//! Operator configuration: every option is a command-line flag with a
//! `LOCUST_*` environment-variable equivalent (the flag wins when both are
//! given). [`OperatorConfig::default`] equals the flag defaults, so tests and
//! the `render` subcommand can build resources without parsing anything.
//!
//! Quantities (`--pod-cpu-request`, ...) are kept as text and checked by
//! [`OperatorConfig::validate`], which reports every bad value at once; typed
//! options (durations, addresses, ports) are rejected by the parser itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::dns::{is_dns1123_label, is_dns1123_subdomain};
use crate::role::Role;
use crate::units::{format_duration, parse_duration, quantity_value};

/// Resource key of CPU in requests and limits.
pub const CPU: &str = "cpu";
/// Resource key of memory in requests and limits.
pub const MEMORY: &str = "memory";
/// Resource key of ephemeral storage in requests and limits.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// The resource keys the operator fills in from its defaults, in output order.
pub const DEFAULTED_RESOURCES: [&str; 3] = [CPU, MEMORY, EPHEMERAL_STORAGE];

/// Format of the operator's own log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the webhook's serving certificate comes from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookCertMode {
    /// `tls.crt`/`tls.key` in `--webhook-cert-dir`, made by someone else (OLM, cert-manager), reloaded when renewed.
    #[default]
    Directory,
    /// The operator makes and renews a CA and serving certificate in a Secret, writes them to `--webhook-cert-dir` and sets the caBundles.
    SelfManaged,
}

/// Configuration of the operator process, from flags and `LOCUST_*` variables.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// CPU request of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_CPU_REQUEST",
        value_name = "QUANTITY",
        default_value = "250m"
    )]
    pub pod_cpu_request: Option<String>,

    /// Memory request of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_MEMORY_REQUEST",
        value_name = "QUANTITY",
        default_value = "128Mi"
    )]
    pub pod_memory_request: Option<String>,

    /// Ephemeral-storage request of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_EPHEMERAL_STORAGE_REQUEST",
        value_name = "QUANTITY"
    )]
    pub pod_ephemeral_storage_request: Option<String>,

    /// CPU limit of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_CPU_LIMIT",
        value_name = "QUANTITY",
        default_value = "1000m"
    )]
    pub pod_cpu_limit: Option<String>,

    /// Memory limit of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_MEMORY_LIMIT",
        value_name = "QUANTITY",
        default_value = "1024Mi"
    )]
    pub pod_memory_limit: Option<String>,

    /// Ephemeral-storage limit of every Locust container unless the role or the test says otherwise. Empty = none.
    #[arg(
        long,
        env = "LOCUST_POD_EPHEMERAL_STORAGE_LIMIT",
        value_name = "QUANTITY"
    )]
    pub pod_ephemeral_storage_limit: Option<String>,

    /// CPU request of the master container; overrides `--pod-cpu-request`.
    #[arg(long, env = "LOCUST_MASTER_CPU_REQUEST", value_name = "QUANTITY")]
    pub master_cpu_request: Option<String>,

    /// Memory request of the master container; overrides `--pod-memory-request`.
    #[arg(long, env = "LOCUST_MASTER_MEMORY_REQUEST", value_name = "QUANTITY")]
    pub master_memory_request: Option<String>,

    /// Ephemeral-storage request of the master container; overrides `--pod-ephemeral-storage-request`.
    #[arg(long, env = "LOCUST_MASTER_EPHEMERAL_STORAGE_REQUEST")]
    #[arg(value_name = "QUANTITY")]
    pub master_ephemeral_storage_request: Option<String>,

    /// CPU limit of the master container; overrides `--pod-cpu-limit`.
    #[arg(long, env = "LOCUST_MASTER_CPU_LIMIT", value_name = "QUANTITY")]
    pub master_cpu_limit: Option<String>,

    /// Memory limit of the master container; overrides `--pod-memory-limit`.
    #[arg(long, env = "LOCUST_MASTER_MEMORY_LIMIT", value_name = "QUANTITY")]
    pub master_memory_limit: Option<String>,

    /// Ephemeral-storage limit of the master container; overrides `--pod-ephemeral-storage-limit`.
    #[arg(long, env = "LOCUST_MASTER_EPHEMERAL_STORAGE_LIMIT")]
    #[arg(value_name = "QUANTITY")]
    pub master_ephemeral_storage_limit: Option<String>,

    /// CPU request of each worker container; overrides `--pod-cpu-request`.
    #[arg(long, env = "LOCUST_WORKER_CPU_REQUEST", value_name = "QUANTITY")]
    pub worker_cpu_request: Option<String>,

    /// Memory request of each worker container; overrides `--pod-memory-request`.
    #[arg(long, env = "LOCUST_WORKER_MEMORY_REQUEST", value_name = "QUANTITY")]
    pub worker_memory_request: Option<String>,

    /// Ephemeral-storage request of each worker container; overrides `--pod-ephemeral-storage-request`.
    #[arg(long, env = "LOCUST_WORKER_EPHEMERAL_STORAGE_REQUEST")]
    #[arg(value_name = "QUANTITY")]
    pub worker_ephemeral_storage_request: Option<String>,

    /// CPU limit of each worker container; overrides `--pod-cpu-limit`.
    #[arg(long, env = "LOCUST_WORKER_CPU_LIMIT", value_name = "QUANTITY")]
    pub worker_cpu_limit: Option<String>,

    /// Memory limit of each worker container; overrides `--pod-memory-limit`.
    #[arg(long, env = "LOCUST_WORKER_MEMORY_LIMIT", value_name = "QUANTITY")]
    pub worker_memory_limit: Option<String>,

    /// Ephemeral-storage limit of each worker container; overrides `--pod-ephemeral-storage-limit`.
    #[arg(long, env = "LOCUST_WORKER_EPHEMERAL_STORAGE_LIMIT")]
    #[arg(value_name = "QUANTITY")]
    pub worker_ephemeral_storage_limit: Option<String>,

    /// `runAsUser` set on the Locust pods' default security context. When unset, the operator
    /// picks at start-up: none on OpenShift (its `restricted-v2` SCC assigns a UID), 1000
    /// elsewhere (the official `locustio/locust` image declares `USER locust` by name, which
    /// the kubelet cannot check against `runAsNonRoot`). A test's own
    /// `spec.security.podSecurityContext` still wins.
    #[arg(long, env = "LOCUST_POD_RUN_AS_USER", value_name = "UID")]
    pub pod_run_as_user: Option<i64>,

    /// `ttlSecondsAfterFinished` of the master and worker Jobs: finished Jobs (and their pods)
    /// are deleted that many seconds after they end. Unset = kept until the test is deleted.
    #[arg(
        long,
        env = "LOCUST_JOB_TTL_SECONDS_AFTER_FINISHED",
        value_name = "SECONDS"
    )]
    pub job_ttl_seconds_after_finished: Option<i32>,

    /// RuntimeClass of the Locust pods when the test does not name one (a test's
    /// `scheduling.runtimeClassName: ""` opts out of it). Empty = none.
    #[arg(long, env = "LOCUST_DEFAULT_RUNTIME_CLASS_NAME", value_name = "NAME")]
    pub default_runtime_class_name: Option<String>,

    /// How long a test's pods may stay unhealthy (image pull errors, missing ConfigMaps or
    /// Secrets, unschedulable, crash loops) before a running or pending test is marked Failed;
    /// counted from when `PodsHealthy` turned False. Accepts `120s`, `2m`, `1m30s`, `90`.
    #[arg(long, env = "LOCUST_GRACE_PERIOD", value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub grace_period: Duration,

    /// How long a test may wait for its master pod to run, counted from the test's creation,
    /// before it is marked Failed with the cause its pods' state and Warning Events name (a
    /// missing test-files ConfigMap leaves a pod `ContainerCreating` with nothing else to
    /// show). `0` turns the deadline off. Accepts `600s`, `10m`, `1h`.
    #[arg(long, env = "LOCUST_START_TIMEOUT", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub start_timeout: Duration,

    /// Interval between two reads of a running test's Locust master statistics (and at most
    /// one status write per test per interval). Keep each test's `autoquit.timeout` above it
    /// (twice is safe) so the final statistics are read before the master exits.
    #[arg(long, env = "LOCUST_STATS_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Address of the Prometheus metrics endpoint (`host:port` or `:port`).
    #[arg(long, env = "LOCUST_METRICS_BIND_ADDRESS", value_name = "ADDR", default_value = "0.0.0.0:8080", value_parser = parse_bind_address)]
    pub metrics_bind_address: SocketAddr,

    /// Serve `/metrics` over HTTPS and let only requests whose bearer token may `get` the
    /// non-resource URL `/metrics` read it (TokenReview and SubjectAccessReview; the
    /// `locust-k8s-operator-metrics-reader` ClusterRole grants it). `false` serves plain HTTP
    /// to anyone who reaches the port.
    #[arg(long, env = "LOCUST_METRICS_SECURE", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics_secure: bool,

    /// Directory with the metrics serving certificate (`tls.crt`, `tls.key`; reloaded when
    /// renewed). Without it, a self-signed certificate is made at start-up.
    #[arg(long, env = "LOCUST_METRICS_CERT_DIR", value_name = "DIR")]
    pub metrics_cert_dir: Option<PathBuf>,

    /// Address of the `/healthz` and `/readyz` endpoints (`host:port` or `:port`).
    #[arg(long, env = "LOCUST_HEALTH_PROBE_BIND_ADDRESS", value_name = "ADDR", default_value = "0.0.0.0:8081", value_parser = parse_bind_address)]
    pub health_probe_bind_address: SocketAddr,

    /// Run leader election so that only one replica reconciles (`--leader-elect=false` to disable).
    #[arg(long, env = "LOCUST_LEADER_ELECT", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease. Empty = the operator pod's namespace.
    #[arg(
        long,
        env = "LOCUST_LEADER_ELECTION_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "LOCUST_LEADER_ELECTION_ID",
        value_name = "NAME",
        default_value = "locust-k8s-operator.locust.io"
    )]
    pub leader_election_id: String,

    /// How long a leader's Lease is valid without renewal.
    #[arg(long, env = "LOCUST_LEASE_DURATION", value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up leadership (it then stops reconciling and stands by for the lease, without restarting).
    #[arg(long, env = "LOCUST_RENEW_DEADLINE", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,

    /// Interval between leader-election attempts.
    #[arg(long, env = "LOCUST_RETRY_PERIOD", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,

    /// HTTPS port of the conversion and validating webhooks.
    #[arg(
        long,
        env = "LOCUST_WEBHOOK_PORT",
        value_name = "PORT",
        default_value_t = 9443
    )]
    pub webhook_port: u16,

    /// IP address the webhook server binds to.
    #[arg(
        long,
        env = "LOCUST_WEBHOOK_BIND_ADDRESS",
        value_name = "IP",
        default_value = "0.0.0.0"
    )]
    pub webhook_bind_address: IpAddr,

    /// Directory holding the webhook's serving certificate `tls.crt` and key `tls.key`.
    #[arg(long, env = "LOCUST_WEBHOOK_CERT_DIR", value_name = "DIR", default_value = DEFAULT_WEBHOOK_CERT_DIR)]
    pub webhook_cert_dir: PathBuf,

    /// Where the webhook's serving certificate comes from: `directory` (made by OLM or
    /// cert-manager) or `self-managed` (the operator keeps a CA and certificate in a Secret and
    /// sets the caBundle of the CRD's conversion webhook and of the ValidatingWebhookConfiguration).
    #[arg(long, env = "LOCUST_WEBHOOK_CERT_MODE", value_enum, default_value_t = WebhookCertMode::Directory)]
    pub webhook_cert_mode: WebhookCertMode,

    /// Self-managed mode: the Secret (in the operator's namespace) holding the CA and the serving certificate.
    #[arg(long, env = "LOCUST_WEBHOOK_CERT_SECRET", value_name = "NAME", default_value = DEFAULT_WEBHOOK_CERT_SECRET)]
    pub webhook_cert_secret: String,

    /// Self-managed mode: the webhook Service in the operator's namespace; the certificate is
    /// made for `<service>.<namespace>.svc` and `<service>.<namespace>.svc.cluster.local`.
    #[arg(long, env = "LOCUST_WEBHOOK_SERVICE_NAME", value_name = "NAME", default_value = DEFAULT_WEBHOOK_SERVICE_NAME)]
    pub webhook_service_name: String,

    /// Self-managed mode: more names of the certificate (DNS names or IP addresses, comma-separated),
    /// for webhooks registered by URL.
    #[arg(
        long,
        env = "LOCUST_WEBHOOK_CERT_EXTRA_NAMES",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub webhook_cert_extra_names: Vec<String>,

    /// Self-managed mode: the ValidatingWebhookConfiguration whose webhooks get the caBundle. Empty = none (the validating webhook is not installed; only the CRD's conversion webhook gets it).
    #[arg(long, env = "LOCUST_WEBHOOK_CONFIGURATION_NAME", value_name = "NAME", default_value = crate::webhook::VALIDATING_WEBHOOK_NAME)]
    pub webhook_configuration_name: String,

    /// Self-managed mode: validity of a new CA (renewed when less than a third is left).
    #[arg(long, env = "LOCUST_WEBHOOK_CA_VALIDITY", value_name = "DURATION", default_value = "87600h", value_parser = parse_duration)]
    pub webhook_ca_validity: Duration,

    /// Self-managed mode: validity of a new serving certificate (renewed when less than a third is left).
    #[arg(long, env = "LOCUST_WEBHOOK_CERT_VALIDITY", value_name = "DURATION", default_value = "8760h", value_parser = parse_duration)]
    pub webhook_cert_validity: Duration,

    /// Self-managed mode: how often the Secret, the caBundles and the files are checked.
    #[arg(long, env = "LOCUST_WEBHOOK_CERT_CHECK_INTERVAL", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub webhook_cert_check_interval: Duration,

    /// Do not start the webhook server (conversion and validation then need another server).
    #[arg(long, env = "LOCUST_DISABLE_WEBHOOKS", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub disable_webhooks: bool,

    /// Log line format.
    #[arg(long, env = "LOCUST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Only watch LocustTests in this namespace. Empty = all namespaces.
    #[arg(long, env = "LOCUST_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
}

/// Default of `--webhook-cert-dir`: where OLM mounts the serving certificate.
pub use crate::webhook::DEFAULT_CERT_DIR as DEFAULT_WEBHOOK_CERT_DIR;
/// Default of `--webhook-cert-secret`.
pub use crate::webhook::certs::DEFAULT_SECRET_NAME as DEFAULT_WEBHOOK_CERT_SECRET;
/// Default of `--webhook-service-name`.
pub use crate::webhook::certs::DEFAULT_SERVICE_NAME as DEFAULT_WEBHOOK_SERVICE_NAME;

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            pod_cpu_request: Some("250m".to_owned()),
            pod_memory_request: Some("128Mi".to_owned()),
            pod_ephemeral_storage_request: None,
            pod_cpu_limit: Some("1000m".to_owned()),
            pod_memory_limit: Some("1024Mi".to_owned()),
            pod_ephemeral_storage_limit: None,
            master_cpu_request: None,
            master_memory_request: None,
            master_cpu_limit: None,
            master_memory_limit: None,
            master_ephemeral_storage_request: None,
            master_ephemeral_storage_limit: None,
            worker_cpu_request: None,
            worker_memory_request: None,
            worker_cpu_limit: None,
            worker_memory_limit: None,
            worker_ephemeral_storage_request: None,
            worker_ephemeral_storage_limit: None,
            pod_run_as_user: None,
            job_ttl_seconds_after_finished: None,
            default_runtime_class_name: None,
            grace_period: Duration::from_secs(120),
            start_timeout: Duration::from_secs(600),
            stats_interval: Duration::from_secs(10),
            metrics_bind_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            metrics_secure: true,
            metrics_cert_dir: None,
            health_probe_bind_address: SocketAddr::from(([0, 0, 0, 0], 8081)),
            leader_elect: true,
            leader_election_namespace: None,
            leader_election_id: "locust-k8s-operator.locust.io".to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            webhook_port: 9443,
            webhook_bind_address: IpAddr::from([0, 0, 0, 0]),
            webhook_cert_dir: PathBuf::from(DEFAULT_WEBHOOK_CERT_DIR),
            webhook_cert_mode: WebhookCertMode::Directory,
            webhook_cert_secret: DEFAULT_WEBHOOK_CERT_SECRET.to_owned(),
            webhook_service_name: DEFAULT_WEBHOOK_SERVICE_NAME.to_owned(),
            webhook_cert_extra_names: Vec::new(),
            webhook_configuration_name: crate::webhook::VALIDATING_WEBHOOK_NAME.to_owned(),
            webhook_ca_validity: Duration::from_secs(87_600 * 3600),
            webhook_cert_validity: Duration::from_secs(8_760 * 3600),
            webhook_cert_check_interval: Duration::from_secs(600),
            disable_webhooks: false,
            log_format: LogFormat::Text,
            watch_namespace: None,
        }
    }
}

/// UID of the `locust` user of the official `locustio/locust` image: the
/// Locust pods' `runAsUser` when `--pod-run-as-user` is not set, except on
/// OpenShift (its `restricted-v2` SCC assigns a UID from the namespace's
/// range). The image declares the non-numeric `USER locust`, which the
/// kubelet cannot check against `runAsNonRoot` without a numeric UID.
pub const LOCUST_IMAGE_UID: i64 = 1000;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One or more options have bad values; each entry names the flag, its value and the problem.
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// CamelCase reason for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigError::Invalid(_) => "InvalidConfiguration",
        }
    }

    /// The individual problems, in the order they were found.
    pub fn problems(&self) -> &[String] {
        match self {
            ConfigError::Invalid(p) => p,
        }
    }
}

/// Where a defaulted quantity came from: its flag name and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sourced<'a> {
    flag: &'static str,
    value: &'a str,
}

/// A quantity option and its flag name.
type FlagOption<'a> = (&'static str, &'a Option<String>);

/// `None` for unset and empty options.
fn set(opt: &Option<String>) -> Option<&str> {
    opt.as_deref().filter(|s| !s.is_empty())
}

impl OperatorConfig {
    /// Every quantity option with its flag name, in flag order.
    fn quantity_options(&self) -> [FlagOption<'_>; 18] {
        /// `[(flag, &self.field)]` for `field "flag"` pairs.
        macro_rules! options {
            ($($field:ident $flag:literal)*) => { [$(($flag, &self.$field)),*] };
        }
        options! {
            pod_cpu_request "--pod-cpu-request"
            pod_memory_request "--pod-memory-request"
            pod_ephemeral_storage_request "--pod-ephemeral-storage-request"
            pod_cpu_limit "--pod-cpu-limit"
            pod_memory_limit "--pod-memory-limit"
            pod_ephemeral_storage_limit "--pod-ephemeral-storage-limit"
            master_cpu_request "--master-cpu-request"
            master_memory_request "--master-memory-request"
            master_cpu_limit "--master-cpu-limit"
            master_memory_limit "--master-memory-limit"
            master_ephemeral_storage_request "--master-ephemeral-storage-request"
            master_ephemeral_storage_limit "--master-ephemeral-storage-limit"
            worker_cpu_request "--worker-cpu-request"
            worker_memory_request "--worker-memory-request"
            worker_cpu_limit "--worker-cpu-limit"
            worker_memory_limit "--worker-memory-limit"
            worker_ephemeral_storage_request "--worker-ephemeral-storage-request"
            worker_ephemeral_storage_limit "--worker-ephemeral-storage-limit"
        }
    }

    /// The default for one resource key of one role: the role option if set, else the
    /// unified one. The options are found by their flag names, `--<role>-<key>-<request or
    /// limit>` and `--pod-<key>-...`, in [`Self::quantity_options`].
    fn default_for(&self, role: Role, key: &str, limit: bool) -> Option<Sourced<'_>> {
        if !DEFAULTED_RESOURCES.contains(&key) {
            return None;
        }
        let kind = if limit { "limit" } else { "request" };
        let option = |scope: &str| {
            let name = format!("--{scope}-{key}-{kind}");
            self.quantity_options()
                .into_iter()
                .find(|(flag, _)| *flag == name)
                .and_then(|(flag, opt)| set(opt).map(|value| Sourced { flag, value }))
        };
        option(role.as_str()).or_else(|| option("pod"))
    }

    /// The default value of one resource key (`cpu`, `memory`,
    /// `ephemeral-storage`) of a role's requests (`limit` false) or limits:
    /// the role option if set, else the unified `--pod-*` one.
    pub fn resource_default(&self, role: Role, key: &str, limit: bool) -> Option<&str> {
        self.default_for(role, key, limit).map(|s| s.value)
    }

    /// This configuration with the defaults the running operator applies on
    /// a cluster that is not OpenShift: `--pod-run-as-user` when given, else
    /// [`LOCUST_IMAGE_UID`]. What `render` builds with, so that it prints
    /// what the operator creates.
    #[must_use]
    pub fn with_default_run_as_user(mut self) -> Self {
        self.pod_run_as_user.get_or_insert(LOCUST_IMAGE_UID);
        self
    }

    /// The runtime class given by `--default-runtime-class-name`, if not empty.
    pub fn default_runtime_class(&self) -> Option<&str> {
        set(&self.default_runtime_class_name)
    }

    /// The namespace to watch, `None` for all namespaces (unset or empty flag).
    pub fn watched_namespace(&self) -> Option<&str> {
        set(&self.watch_namespace)
    }

    /// The Lease namespace when given explicitly (unset or empty = the pod's namespace).
    pub fn lease_namespace(&self) -> Option<&str> {
        set(&self.leader_election_namespace)
    }

    /// Socket address of the webhook server.
    pub fn webhook_socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.webhook_bind_address, self.webhook_port)
    }

    /// Checks every option and reports all problems in one error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();

        let mut quantities_ok = true;
        for (flag, opt) in self.quantity_options() {
            let Some(value) = set(opt) else { continue };
            match quantity_value(value) {
                None => {
                    quantities_ok = false;
                    problems.push(format!("{flag}={value}: not a Kubernetes quantity"));
                }
                Some(v) if v < 0.0 => {
                    quantities_ok = false;
                    problems.push(format!("{flag}={value}: must not be negative"));
                }
                Some(_) => {}
            }
        }
        if quantities_ok {
            for role in [Role::Master, Role::Worker] {
                for key in DEFAULTED_RESOURCES {
                    let (Some(req), Some(lim)) = (
                        self.default_for(role, key, false),
                        self.default_for(role, key, true),
                    ) else {
                        continue;
                    };
                    if let (Some(r), Some(l)) =
                        (quantity_value(req.value), quantity_value(lim.value))
                        && r > l
                    {
                        problems.push(format!(
                            "{}={}: {} {key} request exceeds its limit {}={}",
                            req.flag,
                            req.value,
                            role.as_str(),
                            lim.flag,
                            lim.value
                        ));
                    }
                }
            }
        }

        if let Some(uid) = self.pod_run_as_user
            && uid <= 0
        {
            problems.push(format!(
                "--pod-run-as-user={uid}: must be a positive UID (the pods run as non-root)"
            ));
        }
        if let Some(ttl) = self.job_ttl_seconds_after_finished
            && ttl < 0
        {
            problems.push(format!(
                "--job-ttl-seconds-after-finished={ttl}: must not be negative"
            ));
        }
        if let Some(rc) = self.default_runtime_class()
            && !is_dns1123_subdomain(rc)
        {
            problems.push(format!(
                "--default-runtime-class-name={rc}: not a valid RuntimeClass name (DNS-1123 subdomain)"
            ));
        }
        if self.grace_period < Duration::from_secs(1) {
            problems.push(format!(
                "--grace-period={}: must be at least 1s",
                format_duration(self.grace_period)
            ));
        }
        if self.stats_interval < Duration::from_secs(1) {
            problems.push(format!(
                "--stats-interval={}: must be at least 1s",
                format_duration(self.stats_interval)
            ));
        }
        if !is_dns1123_subdomain(&self.leader_election_id) {
            problems.push(format!(
                "--leader-election-id={}: not a valid Lease name (DNS-1123 subdomain)",
                self.leader_election_id
            ));
        }
        for (flag, ns) in [
            ("--leader-election-namespace", self.lease_namespace()),
            ("--watch-namespace", self.watched_namespace()),
        ] {
            if let Some(ns) = ns
                && !is_dns1123_label(ns)
            {
                problems.push(format!(
                    "{flag}={ns}: not a valid namespace name (DNS-1123 label)"
                ));
            }
        }
        if self.retry_period.is_zero() {
            problems.push("--retry-period=0s: must be positive".to_owned());
        }
        if self.renew_deadline <= self.retry_period {
            problems.push(format!(
                "--renew-deadline={}: must be longer than --retry-period={}",
                format_duration(self.renew_deadline),
                format_duration(self.retry_period)
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            problems.push(format!(
                "--lease-duration={}: must be longer than --renew-deadline={}",
                format_duration(self.lease_duration),
                format_duration(self.renew_deadline)
            ));
        }
        if self.metrics_bind_address.port() != 0
            && self.metrics_bind_address == self.health_probe_bind_address
        {
            problems.push(format!(
                "--health-probe-bind-address={}: same as --metrics-bind-address",
                self.health_probe_bind_address
            ));
        }
        if !self.disable_webhooks {
            if self.webhook_port == 0 {
                problems.push("--webhook-port=0: must be a port between 1 and 65535".to_owned());
            }
            for (flag, addr) in [
                ("--metrics-bind-address", self.metrics_bind_address),
                (
                    "--health-probe-bind-address",
                    self.health_probe_bind_address,
                ),
            ] {
                let overlap = addr.ip() == self.webhook_bind_address
                    || addr.ip().is_unspecified()
                    || self.webhook_bind_address.is_unspecified();
                if addr.port() == self.webhook_port && overlap {
                    problems.push(format!(
                        "--webhook-port={}: same port as {flag}={addr}",
                        self.webhook_port
                    ));
                }
            }
            if self.webhook_cert_dir.as_os_str().is_empty() {
                problems.push("--webhook-cert-dir=: must not be empty".to_owned());
            }
            if self.webhook_cert_mode == WebhookCertMode::SelfManaged {
                self.validate_self_managed(&mut problems);
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

impl OperatorConfig {
    /// The checks of the self-managed certificate options.
    fn validate_self_managed(&self, problems: &mut Vec<String>) {
        for (flag, name, may_be_empty) in [
            ("--webhook-cert-secret", &self.webhook_cert_secret, false),
            (
                "--webhook-configuration-name",
                &self.webhook_configuration_name,
                true,
            ),
        ] {
            let allowed_empty = may_be_empty && name.is_empty();
            if !allowed_empty && !is_dns1123_subdomain(name) {
                problems.push(format!(
                    "{flag}={name}: not a valid object name (DNS-1123 subdomain)"
                ));
            }
        }
        if !is_dns1123_label(&self.webhook_service_name) {
            problems.push(format!(
                "--webhook-service-name={}: not a valid Service name (DNS-1123 label)",
                self.webhook_service_name
            ));
        }
        for name in &self.webhook_cert_extra_names {
            let name = name.trim();
            if !name.is_empty() && name.parse::<IpAddr>().is_err() && !is_dns1123_subdomain(name) {
                problems.push(format!(
                    "--webhook-cert-extra-names: {name} is neither an IP address nor a DNS name"
                ));
            }
        }
        if self.webhook_cert_check_interval < Duration::from_secs(1) {
            problems.push(format!(
                "--webhook-cert-check-interval={}: must be at least 1s",
                format_duration(self.webhook_cert_check_interval)
            ));
        }
        // A serving certificate must fit in the third of the CA's validity
        // left when the CA is renewed, so it is never cut short.
        if self.webhook_cert_validity.is_zero()
            || self.webhook_cert_validity.saturating_mul(3) > self.webhook_ca_validity
        {
            problems.push(format!(
                "--webhook-cert-validity={}: must be positive and at most a third of --webhook-ca-validity={}",
                format_duration(self.webhook_cert_validity),
                format_duration(self.webhook_ca_validity)
            ));
        }
    }
}

/// Parses `host:port`, `[v6]:port` or `:port` (meaning all IPv4 interfaces).
pub fn parse_bind_address(input: &str) -> Result<SocketAddr, String> {
    let s = input.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse::<SocketAddr>()
        .map_err(|_| format!("{input}: expected IP:PORT or :PORT"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clap::Parser;

    use super::*;

    /// Serialises the tests that read or change `LOCUST_*` environment variables.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        config: OperatorConfig,
    }

    fn clear_locust_env() {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LOCUST_") {
                // SAFETY: only tests holding ENV_LOCK touch these variables.
                unsafe { std::env::remove_var(k) };
            }
        }
    }

    fn parse(args: &[&str]) -> Result<OperatorConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("operator").chain(args.iter().copied()))
            .map(|c| c.config)
    }

    #[test]
    fn default_equals_flag_defaults_and_is_valid() {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        clear_locust_env();
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed, OperatorConfig::default());
        assert_eq!(OperatorConfig::default().validate(), Ok(()));
    }

    #[test]
    fn flags_parse() {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        clear_locust_env();
        let c = parse(&[
            "--leader-elect=false",
            "--disable-webhooks",
            "--grace-period=90",
            "--lease-duration=1m30s",
            "--metrics-bind-address=:9090",
            "--log-format=json",
            "--pod-cpu-request=",
            "--worker-memory-limit=2Gi",
            "--job-ttl-seconds-after-finished=300",
            "--master-ephemeral-storage-limit=1Gi",
            "--pod-ephemeral-storage-request=30M",
            "--pod-ephemeral-storage-limit=50M",
            "--worker-ephemeral-storage-request=",
        ])
        .unwrap();
        assert!(!c.leader_elect);
        assert!(c.disable_webhooks);
        assert_eq!(c.grace_period, Duration::from_secs(90));
        assert_eq!(c.lease_duration, Duration::from_secs(90));
        assert_eq!(c.metrics_bind_address, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.pod_cpu_request.as_deref(), Some(""));
        assert_eq!(c.resource_default(Role::Worker, CPU, false), None);
        assert_eq!(c.worker_memory_limit.as_deref(), Some("2Gi"));
        assert_eq!(c.job_ttl_seconds_after_finished, Some(300));
        // Role ephemeral-storage defaults fall back to the unified ones ("" = unset).
        for (role, limit, want) in [
            (Role::Master, true, "1Gi"),
            (Role::Master, false, "30M"),
            (Role::Worker, true, "50M"),
            (Role::Worker, false, "30M"),
        ] {
            let got = c.resource_default(role, EPHEMERAL_STORAGE, limit);
            assert_eq!(got, Some(want), "{} limit={limit}", role.as_str());
        }
        let c = parse(&["--leader-elect"]).unwrap();
        assert!(c.leader_elect);
        assert!(parse(&["--grace-period=soon"]).is_err());
        assert!(parse(&["--log-format=xml"]).is_err());
    }

    #[test]
    fn env_vars_are_read_and_flags_win() {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        clear_locust_env();
        let vars = [
            ("LOCUST_POD_CPU_REQUEST", "500m"),
            ("LOCUST_LEADER_ELECT", "false"),
            ("LOCUST_WEBHOOK_CERT_DIR", "/certs"),
            ("LOCUST_LOG_FORMAT", "json"),
            ("LOCUST_GRACE_PERIOD", "30s"),
            ("LOCUST_WATCH_NAMESPACE", "load"),
            ("LOCUST_MASTER_MEMORY_LIMIT", "3Gi"),
            ("LOCUST_DISABLE_WEBHOOKS", "true"),
            ("LOCUST_WEBHOOK_PORT", "10443"),
        ];
        for (k, v) in vars {
            // SAFETY: only tests holding ENV_LOCK touch these variables.
            unsafe { std::env::set_var(k, v) };
        }
        let from_env = parse(&[]);
        let flag_wins = parse(&["--pod-cpu-request=2", "--log-format=text"]);
        clear_locust_env();

        let c = from_env.unwrap();
        assert_eq!(c.pod_cpu_request.as_deref(), Some("500m"));
        assert!(!c.leader_elect);
        assert_eq!(c.webhook_cert_dir, PathBuf::from("/certs"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.grace_period, Duration::from_secs(30));
        assert_eq!(c.watched_namespace(), Some("load"));
        assert_eq!(c.master_memory_limit.as_deref(), Some("3Gi"));
        assert!(c.disable_webhooks);
        assert_eq!(c.webhook_port, 10443);

        let c = flag_wins.unwrap();
        assert_eq!(c.pod_cpu_request.as_deref(), Some("2"));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(!c.leader_elect);
    }

    #[test]
    fn validate_lists_every_problem() {
        let c = OperatorConfig {
            master_cpu_request: Some("abc".into()),
            worker_memory_limit: Some("-1Gi".into()),
            grace_period: Duration::ZERO,
            job_ttl_seconds_after_finished: Some(-5),
            leader_election_id: "Not_Valid".into(),
            watch_namespace: Some("bad.ns".into()),
            renew_deadline: Duration::from_secs(20),
            pod_run_as_user: Some(0),
            ..OperatorConfig::default()
        };
        let err = c.validate().unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.reason(), "InvalidConfiguration");
        assert!(msg.starts_with("invalid configuration: "), "{msg}");
        for needle in [
            "--master-cpu-request=abc: not a Kubernetes quantity",
            "--worker-memory-limit=-1Gi: must not be negative",
            "--grace-period=0s: must be at least 1s",
            "--job-ttl-seconds-after-finished=-5: must not be negative",
            "--leader-election-id=Not_Valid",
            "--watch-namespace=bad.ns",
            "--lease-duration=15s: must be longer than --renew-deadline=20s",
            "--pod-run-as-user=0",
        ] {
            assert!(msg.contains(needle), "missing {needle:?} in {msg}");
        }
        assert_eq!(err.problems().len(), 8, "{msg}");
    }

    #[test]
    fn validate_rejects_default_request_above_default_limit() {
        let c = OperatorConfig {
            worker_cpu_request: Some("2".into()),
            ..OperatorConfig::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains(
                "--worker-cpu-request=2: worker cpu request exceeds its limit --pod-cpu-limit=1000m"
            ),
            "{msg}"
        );
        assert!(!msg.contains("master"), "{msg}");
        let ok = OperatorConfig {
            worker_cpu_request: Some("2".into()),
            worker_cpu_limit: Some("2000m".into()),
            ..OperatorConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = OperatorConfig {
            worker_ephemeral_storage_request: Some("2Gi".into()),
            pod_ephemeral_storage_limit: Some("1Gi".into()),
            ..OperatorConfig::default()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(
            msg.contains("--worker-ephemeral-storage-request=2Gi: worker ephemeral-storage request exceeds its limit --pod-ephemeral-storage-limit=1Gi"),
            "{msg}"
        );
    }

    #[test]
    fn empty_options_mean_unset() {
        let c = OperatorConfig {
            pod_memory_request: Some(String::new()),
            master_cpu_request: Some(String::new()),
            default_runtime_class_name: Some(String::new()),
            watch_namespace: Some(String::new()),
            ..OperatorConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.resource_default(Role::Master, MEMORY, false), None);
        assert_eq!(c.resource_default(Role::Master, CPU, false), Some("250m"));
        assert_eq!(c.default_runtime_class(), None);
        assert_eq!(c.watched_namespace(), None);
    }

    #[test]
    fn self_managed_certificate_options() {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        clear_locust_env();
        let c = parse(&[
            "--webhook-cert-mode=self-managed",
            "--webhook-cert-secret=certs",
            "--webhook-service-name=hooks",
            "--webhook-cert-extra-names=127.0.0.1,localhost",
            "--webhook-configuration-name=vwc.example.com",
            "--webhook-ca-validity=30h",
            "--webhook-cert-validity=10h",
            "--webhook-cert-check-interval=2s",
        ])
        .unwrap();
        assert_eq!(c.webhook_cert_mode, WebhookCertMode::SelfManaged);
        assert_eq!(c.webhook_cert_secret, "certs");
        assert_eq!(c.webhook_service_name, "hooks");
        assert_eq!(c.webhook_cert_extra_names, vec!["127.0.0.1", "localhost"]);
        assert_eq!(c.webhook_configuration_name, "vwc.example.com");
        assert_eq!(c.webhook_ca_validity, Duration::from_secs(30 * 3600));
        assert_eq!(c.webhook_cert_validity, Duration::from_secs(10 * 3600));
        assert_eq!(c.webhook_cert_check_interval, Duration::from_secs(2));
        assert_eq!(c.validate(), Ok(()));
        assert!(parse(&["--webhook-cert-mode=olm"]).is_err());

        // SAFETY: only tests holding ENV_LOCK touch these variables.
        unsafe { std::env::set_var("LOCUST_WEBHOOK_CERT_MODE", "self-managed") };
        let from_env = parse(&[]);
        clear_locust_env();
        assert_eq!(
            from_env.unwrap().webhook_cert_mode,
            WebhookCertMode::SelfManaged
        );

        let bad = OperatorConfig {
            webhook_cert_mode: WebhookCertMode::SelfManaged,
            webhook_cert_secret: "Bad_Name".into(),
            webhook_service_name: "a.b".into(),
            webhook_cert_extra_names: vec!["not a name".into()],
            webhook_configuration_name: "-vwc".into(),
            webhook_cert_validity: Duration::from_secs(4 * 3600),
            webhook_ca_validity: Duration::from_secs(10 * 3600),
            webhook_cert_check_interval: Duration::ZERO,
            ..OperatorConfig::default()
        };
        let err = bad.validate().unwrap_err();
        let msg = err.to_string();
        for needle in [
            "--webhook-cert-secret=Bad_Name",
            "--webhook-configuration-name=-vwc",
            "--webhook-service-name=a.b",
            "not a name is neither",
            "--webhook-cert-check-interval=0s",
            "--webhook-cert-validity=4h",
        ] {
            assert!(msg.contains(needle), "missing {needle:?} in {msg}");
        }
        assert_eq!(err.problems().len(), 6, "{msg}");
        // No validating webhook configuration to patch (a chart with
        // `webhook.enabled: false`): only the CRD gets the caBundle.
        let no_vwc = OperatorConfig {
            webhook_cert_mode: WebhookCertMode::SelfManaged,
            webhook_configuration_name: String::new(),
            ..OperatorConfig::default()
        };
        assert_eq!(no_vwc.validate(), Ok(()));
        // The same options are not checked in directory mode or without webhooks.
        let directory = OperatorConfig {
            webhook_cert_mode: WebhookCertMode::Directory,
            ..bad.clone()
        };
        assert_eq!(directory.validate(), Ok(()));
        let off = OperatorConfig {
            disable_webhooks: true,
            ..bad
        };
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn the_webhook_port_is_not_the_metrics_or_health_port() {
        let c = OperatorConfig {
            webhook_port: 8080,
            ..OperatorConfig::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("--webhook-port=8080: same port as --metrics-bind-address=0.0.0.0:8080"),
            "{msg}"
        );
        let c = OperatorConfig {
            webhook_port: 8081,
            ..OperatorConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--health-probe-bind-address")
        );
        let apart = OperatorConfig {
            webhook_port: 8080,
            webhook_bind_address: IpAddr::from([127, 0, 0, 1]),
            metrics_bind_address: SocketAddr::from(([127, 0, 0, 2], 8080)),
            ..OperatorConfig::default()
        };
        assert_eq!(apart.validate(), Ok(()));
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_address(":8080"),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("127.0.0.1:1"),
            Ok("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("[::]:443"),
            Ok("[::]:443".parse().unwrap())
        );
        assert!(parse_bind_address("localhost").is_err());
        assert!(parse_bind_address("8080").is_err());
    }
}
