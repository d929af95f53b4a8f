//! A real local Kubernetes control plane for tests.
//!
//! [`Cluster::start`] runs etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok as child processes (each in its own process group,
//! logging to `<dir>/logs/<component>.log`), on random free loopback ports,
//! in a fresh temporary directory, so clusters can run in parallel. kwok
//! plays the kubelet of a few fake Nodes: scheduled pods become Running and
//! stay so until a test ends them ([`Cluster::complete_pod`]); deleted pods
//! really disappear. Everything else (Jobs, garbage collection, RBAC,
//! admission incl. PodSecurity, ServiceAccount tokens) is the real thing.
//!
//! Processes are killed when the [`Cluster`] is dropped (also while
//! panicking), and by the kernel if the test process dies: each child has
//! `PR_SET_PDEATHSIG=SIGKILL`, armed from a spawner thread owned by the
//! cluster (see [`process`]).

mod cgroups;
mod kubeconfig;
pub mod network;
mod node;
mod nodes;
mod pki;
mod pods;
mod probe;
pub(crate) mod process;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use nodes::{
    KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE, KWOK_NODE_LABEL, NodeCapacity, fake_node,
    node_name, node_ready,
};
pub use pods::{
    CUSTOM_STATUS_ANNOTATION, CUSTOM_STATUS_VALUE, JOB_NAME_LABEL, pod_phase, pod_running,
    running_status_patch, terminated_status_patch, waiting_status_patch,
};

pub use network::{
    CLUSTER_DOMAIN, ClusterNet, MIRRORED_REGISTRIES, NODE_IP, REAL_NODE_NAME, REGISTRY_HOST,
    REGISTRY_PORT,
};
pub use node::{KUBELET_SYSCTLS, NodeComponent, NodeImages, NodeTimings, REAL_NODE_LABEL};

use crate::tools::Tools;
use crate::wait::wait_for;
pub use network::Forwarder;
pub use process::log_tail;
use process::{ManagedProcess, ProcessSpec, Spawner};

/// Environment variable: when `1`, a failed cluster's directory (logs, PKI,
/// kubeconfigs, etcd data) is kept and its path printed.
pub const KEEP_CLUSTER_ENV: &str = "LOCUST_KEEP_CLUSTER";

/// Issuer (and audience) of ServiceAccount tokens.
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");
const LOG_TAIL_LINES: usize = 40;

/// A control-plane component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// etcd.
    Etcd,
    /// kube-apiserver.
    Apiserver,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// kwok (the fake kubelets).
    Kwok,
}

impl Component {
    /// Every component, in start order.
    pub const ALL: [Component; 5] = [
        Component::Etcd,
        Component::Apiserver,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Kwok,
    ];

    /// The binary (and log file) name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::Apiserver => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Kwok => "kwok",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to start a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Tools to use; `None`: [`Tools::locate`].
    pub tools: Option<Tools>,
    /// Number of fake nodes (default 2).
    pub nodes: usize,
    /// Capacity of each fake node.
    pub node_capacity: NodeCapacity,
    /// Also run a real node ([`REAL_NODE_NAME`]: kubelet, containerd, runc,
    /// kube-proxy, CoreDNS) whose pods are real containers; needs root and
    /// the node tools and images (default false: kwok nodes only). See
    /// `docs/local-cluster.md`.
    pub real_node: bool,
    /// Images for the real node (default `None`: the project's images, see
    /// `olm_tests::images`).
    pub node_images: Option<NodeImages>,
    /// `--authorization-mode` of the apiserver (default `Node,RBAC`).
    pub authorization_mode: String,
    /// Bound on the whole start-up (default 180 s).
    pub startup_timeout: Duration,
    /// Extra `--flag=value` arguments for kube-apiserver (appended last).
    pub extra_apiserver_args: Vec<String>,
    /// Extra arguments for kube-controller-manager (appended last).
    pub extra_controller_manager_args: Vec<String>,
    /// Parent of the cluster directory (default: the system temp dir).
    pub base_dir: Option<PathBuf>,
    /// Prefix of the cluster directory name and of kubeconfig names.
    pub name: String,
    /// Client rate limits and worker counts of the controller-manager,
    /// scheduler and kwok (default `None`: the components' own defaults,
    /// enough for a few tests at a time). See [`Throughput`].
    pub throughput: Option<Throughput>,
    /// Audit logging of the apiserver (default `None`: off). See [`AuditOptions`].
    pub audit: Option<AuditOptions>,
    /// Which Kubernetes release runs the control plane (default
    /// [`ControlPlane::Current`]). See [`ControlPlane`].
    pub control_plane: ControlPlane,
}

/// The Kubernetes release of the apiserver, controller-manager and scheduler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ControlPlane {
    /// The tools' `bin/` (the version `olm-tests/tools/kube` pins).
    #[default]
    Current,
    /// The oldest release the operator supports, the one behind the CSV's
    /// `minKubeVersion` (the tools' `kube-min/`, pinned by
    /// `olm-tests/tools/kube-min`). kwok nodes only: a kubelet must not be
    /// newer than its apiserver, and the real node's kubelet is current.
    OldestSupported,
}

/// Client rate limits and worker counts for load: with the components'
/// defaults (controller-manager 20 requests/s, scheduler 50/s, 5 Job syncs,
/// kwok 4 pod stages at a time) the controllers, not the apiserver, bound how
/// fast hundreds of Jobs get Running pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throughput {
    /// `--kube-api-qps` of kube-controller-manager and
    /// `clientConnection.qps` of kube-scheduler.
    pub kube_api_qps: u32,
    /// `--kube-api-burst` of kube-controller-manager and
    /// `clientConnection.burst` of kube-scheduler.
    pub kube_api_burst: u32,
    /// `--concurrent-job-syncs` of kube-controller-manager.
    pub concurrent_job_syncs: u32,
    /// kwok's `podPlayStageParallelism` and `podsOnNodeSyncParallelism`
    /// (a `KwokConfiguration` added to its configuration).
    pub kwok_parallelism: u32,
}

impl Throughput {
    /// Limits out of the way: 5000 requests/s with bursts of 10000 (what
    /// kwokctl sets with `--disable-qps-limits`), 50 Job syncs, 16 kwok
    /// workers.
    pub fn high() -> Self {
        Self {
            kube_api_qps: 5000,
            kube_api_burst: 10000,
            concurrent_job_syncs: 50,
            kwok_parallelism: 16,
        }
    }
}

/// Audit logging of the apiserver: every request matching the policy is
/// written as one JSON line (`audit.k8s.io/v1` Event) to
/// [`Cluster::audit_log_path`], synchronously (`--audit-log-mode=blocking`),
/// without rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// The audit `Policy` (`audit.k8s.io/v1`), YAML or JSON.
    pub policy: String,
}

/// Name of the audit log in the cluster's `logs/` directory.
pub const AUDIT_LOG: &str = "audit.log";

impl ClusterOptions {
    /// A cluster with the real node only (no kwok nodes), for tests whose
    /// pods must really run.
    pub fn real_node() -> Self {
        Self {
            nodes: 0,
            real_node: true,
            ..Self::default()
        }
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            tools: None,
            nodes: 2,
            node_capacity: NodeCapacity::default(),
            real_node: false,
            node_images: None,
            authorization_mode: "Node,RBAC".into(),
            startup_timeout: Duration::from_secs(180),
            extra_apiserver_args: Vec::new(),
            extra_controller_manager_args: Vec::new(),
            base_dir: None,
            name: "locust-cluster".into(),
            throughput: None,
            audit: None,
            control_plane: ControlPlane::Current,
        }
    }
}

/// The loopback ports a cluster listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// etcd client URL port.
    pub etcd_client: u16,
    /// etcd peer URL port.
    pub etcd_peer: u16,
    /// kube-apiserver (HTTPS).
    pub apiserver: u16,
    /// kube-controller-manager (HTTPS, `/healthz`, `/metrics`).
    pub controller_manager: u16,
    /// kube-scheduler (HTTPS, `/healthz`, `/metrics`).
    pub scheduler: u16,
}

impl Ports {
    /// Picks five distinct ports free on the host's loopback and below
    /// the cluster namespace's ephemeral range ([`network::free_port`];
    /// another process may still grab one on the host before the forwarder
    /// binds it, which [`Cluster::start`] retries).
    fn pick() -> Result<Self> {
        Ok(Self {
            etcd_client: network::free_port()?,
            etcd_peer: network::free_port()?,
            apiserver: network::free_port()?,
            controller_manager: network::free_port()?,
            scheduler: network::free_port()?,
        })
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The first address of an IPv4 CIDR (the `kubernetes` Service's ClusterIP).
fn first_service_ip(cidr: &str) -> Result<IpAddr> {
    let (base, bits) = cidr
        .split_once('/')
        .with_context(|| format!("service CIDR {cidr:?} has no prefix length"))?;
    let base: Ipv4Addr = base
        .parse()
        .with_context(|| format!("service CIDR {cidr:?}: only IPv4 is supported"))?;
    let bits: u32 = bits
        .parse()
        .with_context(|| format!("service CIDR {cidr:?}"))?;
    if !(1..=30).contains(&bits) {
        bail!("service CIDR {cidr:?}: prefix length must be 1..=30");
    }
    let mask = u32::MAX << (32 - bits);
    Ok(IpAddr::V4(Ipv4Addr::from((u32::from(base) & mask) + 1)))
}

/// Files of the cluster directory.
#[derive(Clone, Debug)]
struct Layout {
    root: PathBuf,
    logs: PathBuf,
    admin_kubeconfig: PathBuf,
    pki: pki::PkiFiles,
}

impl Layout {
    fn log(&self, component: Component) -> PathBuf {
        self.logs.join(format!("{}.log", component.name()))
    }
}

/// A running local cluster. Dropping it kills every component.
pub struct Cluster {
    options: ClusterOptions,
    layout: Layout,
    ports: Ports,
    api_url: String,
    ca_pem: String,
    client: kube::Client,
    tls: Arc<rustls::ClientConfig>,
    node_names: Vec<String>,
    processes: Mutex<BTreeMap<Component, ManagedProcess>>,
    /// The real node, when [`ClusterOptions::real_node`] is set.
    node: Option<node::RealNode>,
    /// The host's door to the apiserver (dropped before the spawner).
    _forwarder: Forwarder,
    net: ClusterNet,
    spawner: Spawner,
    failed: AtomicBool,
    startup: Duration,
    // Last: removed after everything above is stopped.
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.layout.root)
            .field("api_url", &self.api_url)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts a cluster and waits until it is usable: etcd healthy, the
    /// apiserver ready, the controller-manager and scheduler healthy, the
    /// `default` ServiceAccount created, and every fake node Ready without
    /// taints. Each wait is bounded by [`ClusterOptions::startup_timeout`]
    /// (overall); a failure names the component and quotes its log's tail.
    ///
    /// A start that fails because a picked port was taken meanwhile is
    /// retried with new ports (up to three attempts).
    pub async fn start(options: ClusterOptions) -> Result<Cluster> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tools = match &options.tools {
            Some(tools) => tools.clone(),
            None => Tools::locate()?,
        };
        let mut attempt = 1;
        loop {
            match Self::start_once(&options, &tools).await {
                Ok(cluster) => return Ok(cluster),
                Err(error)
                    if attempt < 3 && format!("{error:#}").contains("address already in use") =>
                {
                    tracing::warn!(
                        attempt,
                        "a port was taken while starting; retrying with new ports"
                    );
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn start_once(options: &ClusterOptions, tools: &Tools) -> Result<Cluster> {
        anyhow::ensure!(
            !(options.real_node && options.control_plane == ControlPlane::OldestSupported),
            "the real node's kubelet is newer than the oldest supported control plane \
             (a kubelet must not be newer than its apiserver): use kwok nodes with it"
        );
        let started = Instant::now();
        let deadline = started + options.startup_timeout;
        let prefix = format!("{}-", options.name);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        let dir = match &options.base_dir {
            Some(base) => {
                std::fs::create_dir_all(base)
                    .with_context(|| format!("creating {}", base.display()))?;
                builder.tempdir_in(base)
            }
            None => builder.tempdir(),
        }
        .context("creating the cluster directory")?;
        let root = dir.path().to_path_buf();
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs)?;
        std::fs::create_dir_all(root.join("kubeconfigs"))?;

        let ports = Ports::pick()?;
        let api_url = format!("https://127.0.0.1:{}", ports.apiserver);
        let service_ip = first_service_ip(network::SERVICE_CIDR)?;
        let pki = pki::Pki::generate(Some(service_ip))?;
        let pki_files = pki.write(&root.join("pki"))?;
        let layout = Layout {
            admin_kubeconfig: root.join("kubeconfigs").join("admin.kubeconfig"),
            root: root.clone(),
            logs,
            pki: pki_files,
        };

        let write_kubeconfig = |file: &str, who: &pki::CertAndKey| -> Result<PathBuf> {
            let path = root.join("kubeconfigs").join(file);
            kubeconfig::write(
                &path,
                &options.name,
                &api_url,
                &pki.ca.cert_pem,
                &kubeconfig::Credentials::ClientCertificate {
                    cert_pem: &who.cert_pem,
                    key_pem: &who.key_pem,
                },
            )?;
            Ok(path)
        };
        write_kubeconfig("admin.kubeconfig", &pki.admin)?;
        let kcm_kubeconfig = write_kubeconfig(
            "kube-controller-manager.kubeconfig",
            &pki.controller_manager,
        )?;
        let scheduler_kubeconfig = write_kubeconfig("kube-scheduler.kubeconfig", &pki.scheduler)?;
        let kwok_kubeconfig = write_kubeconfig("kwok.kubeconfig", &pki.kwok)?;

        let config_dir = root.join("config");
        std::fs::create_dir_all(&config_dir)?;
        let scheduler_config = config_dir.join("kube-scheduler.yaml");
        let scheduler_yaml = scheduler_config_yaml(&scheduler_kubeconfig, options.throughput)?;
        pki::write_file(&scheduler_config, scheduler_yaml.as_bytes(), false)?;
        let kwok_config = config_dir.join("kwok-stages.yaml");
        pki::write_file(
            &kwok_config,
            kwok_config_yaml(options.throughput)?.as_bytes(),
            false,
        )?;
        let audit_policy = match &options.audit {
            Some(audit) => {
                let path = config_dir.join("audit-policy.yaml");
                pki::write_file(&path, audit.policy.as_bytes(), false)?;
                Some(path)
            }
            None => None,
        };
        let kwok_home = root.join("kwok-home");
        std::fs::create_dir_all(&kwok_home)?;

        let specs = component_specs(&ComponentInputs {
            options,
            tools,
            layout: &layout,
            ports,
            kcm_kubeconfig: &kcm_kubeconfig,
            scheduler_config: &scheduler_config,
            scheduler_kubeconfig: &scheduler_kubeconfig,
            kwok_kubeconfig: &kwok_kubeconfig,
            kwok_config: &kwok_config,
            kwok_home: &kwok_home,
            audit_policy: audit_policy.as_deref(),
        });
        let processes = specs
            .into_iter()
            .map(|(c, spec)| (c, ManagedProcess::new(spec)))
            .collect();

        let spawner = Spawner::new(&options.name)?;
        for args in network::setup_commands() {
            let mut command = std::process::Command::new(&args[0]);
            command.args(&args[1..]);
            spawner
                .run(command)
                .context("setting up the cluster's network namespace")?;
        }
        let net = ClusterNet::new(spawner.handle());
        let forwarder = Forwarder::start(net.clone(), ports.apiserver, loopback(ports.apiserver))?;
        let node = if options.real_node {
            let images = match &options.node_images {
                Some(images) => images.clone(),
                None => project_node_images()?,
            };
            Some(node::RealNode::prepare(
                &node::NodeInputs {
                    tools,
                    root: &root,
                    pki: &pki,
                    api_url: &api_url,
                    cluster_name: &options.name,
                    images,
                },
                &net,
                spawner.netns(),
            )?)
        } else {
            None
        };

        let client = client_from_kubeconfig(&layout.admin_kubeconfig).await?;
        let node_names = (0..options.nodes).map(node_name).collect();
        let cluster = Cluster {
            options: options.clone(),
            ports,
            api_url,
            tls: probe::tls_config(&pki.ca.cert_pem)?,
            ca_pem: pki.ca.cert_pem.clone(),
            client,
            node_names,
            processes: Mutex::new(processes),
            node,
            _forwarder: forwarder,
            net,
            spawner,
            failed: AtomicBool::new(false),
            startup: Duration::ZERO,
            layout,
            dir: Some(dir),
        };
        match cluster.boot(deadline).await {
            Ok(()) => {
                let mut cluster = cluster;
                cluster.startup = started.elapsed();
                tracing::info!(
                    dir = %cluster.layout.root.display(),
                    api = %cluster.api_url,
                    startup = ?cluster.startup,
                    "local cluster ready"
                );
                Ok(cluster)
            }
            Err(error) => {
                cluster.failed.store(true, Ordering::SeqCst);
                let hint = if keep_requested() {
                    format!("cluster directory kept: {}", cluster.layout.root.display())
                } else {
                    format!("set {KEEP_CLUSTER_ENV}=1 to keep the cluster directory")
                };
                Err(error.context(format!("starting the local cluster failed ({hint})")))
            }
        }
    }

    async fn boot(&self, deadline: Instant) -> Result<()> {
        let t0 = Instant::now();
        self.start_process(Component::Etcd)?;
        self.wait_ready(Component::Etcd, deadline).await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "etcd healthy");
        self.start_process(Component::Apiserver)?;
        self.wait_ready(Component::Apiserver, deadline).await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "kube-apiserver ready");
        self.create_nodes().await?;
        let rest = [
            Component::ControllerManager,
            Component::Scheduler,
            Component::Kwok,
        ];
        for c in rest {
            self.start_process(c)?;
        }
        for c in rest {
            self.wait_ready(c, deadline).await?;
            tracing::debug!(elapsed = ?t0.elapsed(), component = %c, "ready");
        }
        if let Some(node) = &self.node {
            let timings = node
                .start(&self.client, deadline)
                .await
                .context("starting the real node")?;
            tracing::info!(?timings, "real node ready");
        }
        self.wait_until(
            Component::ControllerManager,
            deadline,
            "the default ServiceAccount in namespace default",
            || async {
                let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), "default");
                Ok(sas.get_opt("default").await?.map(drop))
            },
        )
        .await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "default ServiceAccount exists");
        Ok(())
    }

    async fn create_nodes(&self) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        for name in &self.node_names {
            let node = fake_node(name, &self.options.node_capacity);
            match api.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error).with_context(|| format!("creating node {name}")),
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Component, ManagedProcess>> {
        self.processes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start_process(&self, component: Component) -> Result<()> {
        let mut processes = self.lock();
        let process = processes
            .get_mut(&component)
            .with_context(|| format!("{component} is not part of this cluster"))?;
        process.start(&self.spawner)
    }

    /// The log tail of `component`, formatted for an error message.
    fn log_excerpt(&self, component: Component) -> String {
        let path = self.layout.log(component);
        format!(
            "--- last {LOG_TAIL_LINES} lines of {} ---\n{}\n--- end of {} ---",
            path.display(),
            log_tail(&path, LOG_TAIL_LINES),
            component
        )
    }

    /// Polls `check` until it yields `Some`, failing at `deadline` or as soon
    /// as `component` exits; errors quote `component`'s log.
    async fn wait_until<F, Fut>(
        &self,
        component: Component,
        deadline: Instant,
        what: &str,
        check: F,
    ) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<()>>>,
    {
        let check = &check;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let outcome = wait_for(timeout, Duration::from_millis(100), || async move {
            let exited = self
                .lock()
                .get_mut(&component)
                .and_then(ManagedProcess::exit_status);
            if let Some(status) = exited {
                return Ok(Some(Err(anyhow!("{component} exited with {status}"))));
            }
            Ok(check().await?.map(Ok))
        })
        .await
        .and_then(|inner| inner);
        outcome.with_context(|| format!("waiting for {what}\n{}", self.log_excerpt(component)))
    }

    async fn wait_ready(&self, component: Component, deadline: Instant) -> Result<()> {
        let what = format!("{component} to become ready");
        match component {
            Component::Etcd => {
                let addr = loopback(self.ports.etcd_client);
                self.wait_until(component, deadline, &what, || async move {
                    let r =
                        probe::http_get(&self.net, addr, "/health", Duration::from_secs(5)).await?;
                    Ok((r.status == 200 && r.body.contains("true")).then_some(()))
                })
                .await
            }
            Component::Apiserver | Component::ControllerManager | Component::Scheduler => {
                let (port, path) = match component {
                    // Anonymous /readyz is allowed (system:public-info-viewer)
                    // once the RBAC bootstrap hook ran, i.e. once it is ready.
                    Component::Apiserver => (self.ports.apiserver, "/readyz"),
                    Component::Scheduler => (self.ports.scheduler, "/healthz"),
                    _ => (self.ports.controller_manager, "/healthz"),
                };
                let tls = self.tls.clone();
                self.wait_until(component, deadline, &what, || {
                    let tls = tls.clone();
                    async move {
                        let r = probe::https_get(
                            &self.net,
                            loopback(port),
                            path,
                            tls,
                            Duration::from_secs(5),
                        )
                        .await?;
                        if r.status == 200 {
                            Ok(Some(()))
                        } else {
                            Err(anyhow!("{path} answered {}: {}", r.status, r.body.trim()))
                        }
                    }
                })
                .await
            }
            Component::Kwok => {
                self.wait_until(
                    component,
                    deadline,
                    "every fake node Ready and untainted",
                    || async {
                        let nodes: Api<Node> = Api::all(self.client.clone());
                        let listed = nodes.list(&ListParams::default()).await?.items;
                        let ready = self.node_names.iter().all(|name| {
                            listed.iter().any(|n| {
                                n.metadata.name.as_deref() == Some(name.as_str()) && node_ready(n)
                            })
                        });
                        Ok(ready.then_some(()))
                    },
                )
                .await
            }
        }
    }

    /// Stops `component` gracefully (SIGTERM to its process group, SIGKILL
    /// after 15 s). Its data and ports are kept for [`Cluster::start_component`].
    pub fn stop_component(&self, component: Component) -> Result<()> {
        let mut processes = self.lock();
        let process = processes
            .get_mut(&component)
            .with_context(|| format!("{component} is not part of this cluster"))?;
        process.stop(libc::SIGTERM, Duration::from_secs(15));
        Ok(())
    }

    /// Kills `component` at once (SIGKILL to its process group), like a crash.
    pub fn kill_component(&self, component: Component) -> Result<()> {
        let mut processes = self.lock();
        let process = processes
            .get_mut(&component)
            .with_context(|| format!("{component} is not part of this cluster"))?;
        process.stop(libc::SIGKILL, Duration::from_secs(5));
        Ok(())
    }

    /// Restarts a stopped `component` with the same ports, data and
    /// configuration, and waits (up to `timeout`) until it is ready again.
    pub async fn start_component(&self, component: Component, timeout: Duration) -> Result<()> {
        self.start_process(component)?;
        self.wait_ready(component, Instant::now() + timeout).await
    }

    /// The process id of `component`, while it runs.
    pub fn component_pid(&self, component: Component) -> Option<u32> {
        let mut processes = self.lock();
        let process = processes.get_mut(&component)?;
        if process.is_running() {
            process.pid()
        } else {
            None
        }
    }

    /// Whether `component`'s process is running.
    pub fn component_running(&self, component: Component) -> bool {
        self.lock()
            .get_mut(&component)
            .is_some_and(ManagedProcess::is_running)
    }

    /// Stops every component gracefully, in reverse start order, and removes
    /// the cluster directory.
    pub fn stop(mut self) {
        if let Some(mut node) = self.node.take() {
            node.stop();
        }
        let mut processes = self.lock();
        for component in Component::ALL.iter().rev() {
            if let Some(process) = processes.get_mut(component)
                && let Some(status) = process.stop(libc::SIGTERM, Duration::from_secs(15))
            {
                tracing::debug!(%component, %status, "stopped");
            }
        }
    }

    /// The host PID of the real node's PID-namespace init (while the node
    /// runs): every process of the node dies with it.
    pub fn node_init_pid(&self) -> Option<u32> {
        self.node.as_ref().and_then(node::RealNode::init_pid)
    }

    /// The log file of a component of the real node.
    pub fn node_log_path(&self, component: NodeComponent) -> PathBuf {
        self.layout.logs.join(format!("{}.log", component.name()))
    }

    /// The real node's `ctr` (namespace `k8s.io`), e.g. to list or tag images.
    pub fn node_ctr(&self, args: &[&str]) -> Result<String> {
        self.node
            .as_ref()
            .context("this cluster has no real node")?
            .ctr(args, None)
    }

    /// `GET path` over plain HTTP to `addr` inside the cluster (a pod's IP,
    /// say); the status code and body (bounded: 10 s).
    pub async fn http_get(&self, addr: SocketAddr, path: &str) -> Result<(u16, String)> {
        let r = probe::http_get(&self.net, addr, path, Duration::from_secs(10)).await?;
        Ok((r.status, r.body))
    }

    /// Whether the cluster has a real node.
    pub fn has_real_node(&self) -> bool {
        self.node.is_some()
    }

    /// Forwards a free port on the host's 127.0.0.1 to `target` inside the
    /// cluster (a pod's IP, say), until the returned value is dropped.
    pub fn forward(&self, target: SocketAddr) -> Result<Forwarder> {
        Forwarder::start(self.net.clone(), 0, target)
    }

    /// The cluster's network namespace: connect to or listen on its
    /// addresses, start processes in it.
    pub fn net(&self) -> ClusterNet {
        self.net.clone()
    }

    /// A client authenticated as cluster admin (O=system:masters).
    pub fn admin_client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The admin kubeconfig (credentials embedded; mode 0600).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.layout.admin_kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The cluster CA certificate (PEM): it signed the apiserver's serving
    /// certificate and every client certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The ports the components listen on.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The cluster directory (logs in `logs/`, kubeconfigs in `kubeconfigs/`).
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// The log file of `component`.
    pub fn log_path(&self, component: Component) -> PathBuf {
        self.layout.log(component)
    }

    /// The apiserver's audit log (JSON lines), when [`ClusterOptions::audit`]
    /// is set.
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        self.options
            .audit
            .as_ref()
            .map(|_| self.layout.logs.join(AUDIT_LOG))
    }

    /// Names of the fake nodes.
    pub fn node_names(&self) -> &[String] {
        &self.node_names
    }

    /// How long [`Cluster::start`] took until the cluster was usable.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// Marks the cluster failed, so that its directory is kept on drop when
    /// `LOCUST_KEEP_CLUSTER=1` (a panicking test is marked automatically).
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Requests a token for ServiceAccount `namespace/name` (TokenRequest API,
    /// valid for `ttl`; the apiserver requires at least 10 minutes) and writes
    /// a kubeconfig that authenticates with it. Returns the file's path.
    pub async fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<PathBuf> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let response = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?;
        let token = response
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .context("the TokenRequest returned no token")?;
        let path = self
            .layout
            .root
            .join("kubeconfigs")
            .join(format!("sa-{namespace}-{name}.kubeconfig"));
        kubeconfig::write(
            &path,
            &format!("{}-{namespace}-{name}", self.options.name),
            &self.api_url,
            &self.ca_pem,
            &kubeconfig::Credentials::Token(&token),
        )?;
        Ok(path)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut node) = self.node.take() {
            node.stop();
        }
        {
            let mut processes = self.lock();
            for component in Component::ALL.iter().rev() {
                if let Some(process) = processes.get_mut(component) {
                    process.stop(libc::SIGKILL, Duration::from_secs(5));
                }
            }
        }
        let failed = self.failed.load(Ordering::SeqCst) || std::thread::panicking();
        if failed
            && keep_requested()
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!(
                "{KEEP_CLUSTER_ENV}=1: kept the failed cluster's directory {} (logs in logs/)",
                path.display()
            );
        }
    }
}

/// The project's images (`olm-tests/images/build.sh`), every one imported
/// into the real node, pause as its sandbox image.
fn project_node_images() -> Result<NodeImages> {
    use crate::images::{Image, Images};
    let images = Images::locate().context("the real node needs the project's images")?;
    Ok(NodeImages {
        sandbox: images.reference(Image::Pause).to_owned(),
        archives: Image::ALL.iter().map(|i| images.archive(*i)).collect(),
    })
}

fn keep_requested() -> bool {
    std::env::var(KEEP_CLUSTER_ENV)
        .is_ok_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
}

/// A kube client for the kubeconfig at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig =
        Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    kube::Client::try_from(config).context("building a kube client")
}

struct ComponentInputs<'a> {
    options: &'a ClusterOptions,
    tools: &'a Tools,
    layout: &'a Layout,
    ports: Ports,
    kcm_kubeconfig: &'a Path,
    scheduler_config: &'a Path,
    scheduler_kubeconfig: &'a Path,
    kwok_kubeconfig: &'a Path,
    kwok_config: &'a Path,
    kwok_home: &'a Path,
    audit_policy: Option<&'a Path>,
}

/// The kube-scheduler configuration file.
fn scheduler_config_yaml(kubeconfig: &Path, throughput: Option<Throughput>) -> Result<String> {
    let mut connection = serde_json::json!({ "kubeconfig": kubeconfig });
    if let Some(t) = throughput {
        connection["qps"] = t.kube_api_qps.into();
        connection["burst"] = t.kube_api_burst.into();
    }
    Ok(serde_yaml::to_string(&serde_json::json!({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": connection,
        "leaderElection": { "leaderElect": false },
    }))?)
}

/// kwok's configuration: the Stages, plus a `KwokConfiguration` with more
/// workers when `throughput` is set (kwok's command-line flags still win).
fn kwok_config_yaml(throughput: Option<Throughput>) -> Result<String> {
    let mut text = KWOK_STAGES.to_owned();
    if let Some(t) = throughput {
        let options = serde_yaml::to_string(&serde_json::json!({
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            // A configuration file is not defaulted: every default of
            // kwok v0.8.0 (SetObjectDefaults_KwokConfiguration) is spelled
            // out; the command-line flags set the rest.
            "options": {
                "podPlayStageParallelism": t.kwok_parallelism,
                "podsOnNodeSyncParallelism": t.kwok_parallelism,
                "nodePlayStageParallelism": 4,
                "nodeLeaseParallelism": 4,
                "enableDebuggingHandlers": true,
                "enableContentionProfiling": false,
                "enableProfilingHandler": true,
                "enablePodsOnNodeSyncListPager": true,
                "enablePodsOnNodeSyncStreamWatch": false,
            },
        }))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("---\n");
        text.push_str(&options);
    }
    Ok(text)
}

fn flag(name: &str, value: impl AsRef<std::ffi::OsStr>) -> OsString {
    let mut arg = OsString::from(format!("--{name}="));
    arg.push(value.as_ref());
    arg
}

/// The binary `component` runs from: the oldest supported control plane has
/// a directory of its own; etcd and kwok are the same for both.
fn program(tools: &Tools, control_plane: ControlPlane, component: Component) -> PathBuf {
    match (control_plane, component) {
        (
            ControlPlane::OldestSupported,
            Component::Apiserver | Component::ControllerManager | Component::Scheduler,
        ) => tools.min_kube_bin(component.name()),
        _ => tools.bin(component.name()),
    }
}

/// Command lines of every component.
fn component_specs(inputs: &ComponentInputs<'_>) -> BTreeMap<Component, ProcessSpec> {
    let ComponentInputs {
        options,
        tools,
        layout,
        ports,
        ..
    } = inputs;
    let pki = &layout.pki;
    let etcd_client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let etcd_peer = format!("http://127.0.0.1:{}", ports.etcd_peer);

    let etcd = vec![
        flag("name", "local"),
        flag("data-dir", layout.root.join("etcd")),
        flag("listen-client-urls", &etcd_client),
        flag("advertise-client-urls", &etcd_client),
        flag("listen-peer-urls", &etcd_peer),
        flag("initial-advertise-peer-urls", &etcd_peer),
        flag("initial-cluster", format!("local={etcd_peer}")),
        flag("initial-cluster-state", "new"),
        flag("unsafe-no-fsync", "true"),
        flag("auto-compaction-retention", "1"),
        flag("quota-backend-bytes", (2u64 << 30).to_string()),
        flag("log-level", "warn"),
    ];

    let mut apiserver = vec![
        flag("etcd-servers", &etcd_client),
        // Every address of the cluster's own network namespace: 127.0.0.1
        // (the host's forwarder, processes in the namespace) and the node
        // address (pods, through the `kubernetes` Service, whose endpoint
        // is the advertised address).
        flag("bind-address", "0.0.0.0"),
        flag("advertise-address", network::NODE_IP.to_string()),
        flag("secure-port", ports.apiserver.to_string()),
        flag("tls-cert-file", &pki.apiserver_cert),
        flag("tls-private-key-file", &pki.apiserver_key),
        flag("client-ca-file", &pki.ca_cert),
        flag("authorization-mode", &options.authorization_mode),
        // PodSecurity is on by default; listed for clarity.
        flag(
            "enable-admission-plugins",
            "NodeRestriction,OwnerReferencesPermissionEnforcement,PodSecurity",
        ),
        flag("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        flag("api-audiences", SERVICE_ACCOUNT_ISSUER),
        flag("service-account-key-file", &pki.sa_pub),
        flag("service-account-signing-key-file", &pki.sa_key),
        flag("service-cluster-ip-range", network::SERVICE_CIDR),
        // `kubectl logs/exec` and the apiserver's health checks of the
        // real node's kubelet: by its IP, with a client certificate,
        // verifying the kubelet's serving certificate.
        flag("kubelet-preferred-address-types", "InternalIP"),
        flag("kubelet-client-certificate", &pki.kubelet_client_cert),
        flag("kubelet-client-key", &pki.kubelet_client_key),
        flag("kubelet-certificate-authority", &pki.ca_cert),
        flag("requestheader-client-ca-file", &pki.front_proxy_ca_cert),
        flag("requestheader-allowed-names", "front-proxy-client"),
        flag("requestheader-username-headers", "X-Remote-User"),
        flag("requestheader-group-headers", "X-Remote-Group"),
        flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        flag("proxy-client-cert-file", &pki.front_proxy_client_cert),
        flag("proxy-client-key-file", &pki.front_proxy_client_key),
        flag("profiling", "false"),
    ];
    if let Some(policy) = inputs.audit_policy {
        apiserver.extend([
            flag("audit-policy-file", policy),
            flag("audit-log-path", layout.logs.join(AUDIT_LOG)),
            flag("audit-log-format", "json"),
            flag("audit-log-mode", "blocking"),
            // lumberjack rotates at 100 MB unless told otherwise: never rotate.
            flag("audit-log-maxsize", "1000000"),
        ]);
    }
    apiserver.extend(options.extra_apiserver_args.iter().map(OsString::from));

    let secure_serving = |port: u16| {
        vec![
            flag("bind-address", "127.0.0.1"),
            flag("secure-port", port.to_string()),
            flag("tls-cert-file", &pki.components_cert),
            flag("tls-private-key-file", &pki.components_key),
            flag(
                "authorization-always-allow-paths",
                "/healthz,/readyz,/livez,/metrics",
            ),
        ]
    };

    let mut controller_manager = vec![
        flag("kubeconfig", inputs.kcm_kubeconfig),
        flag("authentication-kubeconfig", inputs.kcm_kubeconfig),
        flag("authorization-kubeconfig", inputs.kcm_kubeconfig),
        flag("leader-elect", "false"),
        flag("controllers", "*"),
        flag("use-service-account-credentials", "true"),
        flag("service-account-private-key-file", &pki.sa_key),
        flag("root-ca-file", &pki.ca_cert),
        flag("cluster-signing-cert-file", &pki.ca_cert),
        flag("cluster-signing-key-file", &pki.ca_key),
        flag("service-cluster-ip-range", network::SERVICE_CIDR),
        flag("cluster-name", &options.name),
        // Node health is checked every second (default 5 s), so a test that
        // stops kwok sees its nodes go NotReady sooner.
        flag("node-monitor-period", "1s"),
        flag("profiling", "false"),
    ];
    if let Some(t) = options.throughput {
        controller_manager.extend([
            flag("kube-api-qps", t.kube_api_qps.to_string()),
            flag("kube-api-burst", t.kube_api_burst.to_string()),
            flag("concurrent-job-syncs", t.concurrent_job_syncs.to_string()),
        ]);
    }
    controller_manager.extend(secure_serving(ports.controller_manager));
    controller_manager.extend(
        options
            .extra_controller_manager_args
            .iter()
            .map(OsString::from),
    );

    let mut scheduler = vec![
        flag("config", inputs.scheduler_config),
        flag("authentication-kubeconfig", inputs.scheduler_kubeconfig),
        flag("authorization-kubeconfig", inputs.scheduler_kubeconfig),
    ];
    scheduler.extend(secure_serving(ports.scheduler));

    let kwok = vec![
        flag("kubeconfig", inputs.kwok_kubeconfig),
        flag("config", inputs.kwok_config),
        flag("manage-all-nodes", "false"),
        flag(
            "manage-nodes-with-annotation-selector",
            format!("{KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}"),
        ),
        flag("node-lease-duration-seconds", "40"),
        flag("cidr", network::KWOK_POD_CIDR),
        flag("node-ip", "127.0.0.1"),
    ];

    [
        (Component::Etcd, etcd, vec![]),
        (Component::Apiserver, apiserver, vec![]),
        (Component::ControllerManager, controller_manager, vec![]),
        (Component::Scheduler, scheduler, vec![]),
        // kwok also reads ~/.kwok/kwok.yaml if present: give it a home of its own.
        (
            Component::Kwok,
            kwok,
            vec![(
                OsString::from("HOME"),
                inputs.kwok_home.as_os_str().to_owned(),
            )],
        ),
    ]
    .into_iter()
    .map(|(component, args, env)| {
        (
            component,
            ProcessSpec {
                name: component.name(),
                program: program(tools, options.control_plane, component),
                args,
                env,
                cwd: layout.root.clone(),
                log: layout.log(component),
            },
        )
    })
    .collect()
}

/// `GET path` over HTTPS to `addr` inside `net`'s cluster, verifying the
/// server against `ca_pem`; the status code and body (bounded: 10 s).
pub async fn net_https_get(
    net: &ClusterNet,
    ca_pem: &str,
    addr: SocketAddr,
    path: &str,
) -> Result<(u16, String)> {
    let tls = probe::tls_config(ca_pem)?;
    let r = probe::https_get(net, addr, path, tls, Duration::from_secs(10)).await?;
    Ok((r.status, r.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn cluster_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Cluster>();
    }

    #[test]
    fn first_service_ip_of_a_range() {
        assert_eq!(
            first_service_ip("198.19.128.0/17").unwrap().to_string(),
            "198.19.128.1"
        );
        assert_eq!(
            first_service_ip("10.96.12.0/12").unwrap().to_string(),
            "10.96.0.1"
        );
        assert!(first_service_ip("fd00::/108").is_err());
        assert!(first_service_ip("10.0.0.0").is_err());
    }

    #[test]
    fn ports_are_distinct() {
        let p = Ports::pick().unwrap();
        let mut all = [
            p.etcd_client,
            p.etcd_peer,
            p.apiserver,
            p.controller_manager,
            p.scheduler,
        ];
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn kwok_stages_leave_job_pods_running() {
        let names: Vec<String> = serde_yaml::Deserializer::from_str(KWOK_STAGES)
            .map(|doc| {
                let v = serde_yaml::Value::deserialize(doc).unwrap();
                v["metadata"]["name"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "node-initialize",
                "node-heartbeat-with-lease",
                "pod-ready",
                "pod-terminate-on-delete",
                "pod-delete"
            ]
        );
        assert!(KWOK_STAGES.contains(r#".metadata.annotations["kwok.x-k8s.io/status"]"#));
    }

    #[test]
    fn command_lines_carry_the_required_flags() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki::Pki::generate(None)
            .unwrap()
            .write(&dir.path().join("pki"))
            .unwrap();
        let layout = Layout {
            root: dir.path().into(),
            logs: dir.path().join("logs"),
            admin_kubeconfig: dir.path().join("admin.kubeconfig"),
            pki,
        };
        let options = ClusterOptions::default();
        let tools_dir = dir.path().join("tools");
        let specs = component_specs(&ComponentInputs {
            options: &options,
            tools: &fake_tools(&tools_dir),
            layout: &layout,
            ports: Ports {
                etcd_client: 1,
                etcd_peer: 2,
                apiserver: 3,
                controller_manager: 4,
                scheduler: 5,
            },
            kcm_kubeconfig: Path::new("/k/kcm"),
            scheduler_config: Path::new("/k/sched.yaml"),
            scheduler_kubeconfig: Path::new("/k/sched"),
            kwok_kubeconfig: Path::new("/k/kwok"),
            kwok_config: Path::new("/k/stages.yaml"),
            kwok_home: Path::new("/k/home"),
            audit_policy: None,
        });
        let args = |c: Component| -> Vec<String> {
            specs[&c]
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let etcd = args(Component::Etcd);
        assert!(etcd.contains(&"--unsafe-no-fsync=true".to_string()));
        assert!(etcd.contains(&"--listen-client-urls=http://127.0.0.1:1".to_string()));
        let api = args(Component::Apiserver);
        for expected in [
            "--bind-address=0.0.0.0",
            "--advertise-address=198.19.0.1",
            "--secure-port=3",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement,PodSecurity",
            "--service-cluster-ip-range=198.19.128.0/17",
            "--kubelet-preferred-address-types=InternalIP",
            "--etcd-servers=http://127.0.0.1:1",
        ] {
            assert!(
                api.contains(&expected.to_string()),
                "{expected} missing from {api:?}"
            );
        }
        assert!(
            api.iter()
                .any(|a| a.starts_with("--service-account-signing-key-file="))
        );
        let kcm = args(Component::ControllerManager);
        for expected in [
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--secure-port=4",
        ] {
            assert!(
                kcm.contains(&expected.to_string()),
                "{expected} missing from {kcm:?}"
            );
        }
        assert!(kcm.iter().any(|a| a.starts_with("--root-ca-file=")));
        assert!(
            kcm.iter()
                .any(|a| a.starts_with("--service-account-private-key-file="))
        );
        let kwok = args(Component::Kwok);
        assert!(kwok.contains(
            &"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".to_string()
        ));
        assert_eq!(specs[&Component::Kwok].env[0].0, "HOME");
        assert_eq!(
            specs[&Component::Scheduler].program,
            tools_dir.join("bin/kube-scheduler")
        );
    }

    #[test]
    fn the_oldest_control_plane_runs_from_kube_min() {
        let dir = tempfile::tempdir().unwrap();
        let tools = fake_tools(dir.path());
        for component in [
            Component::Apiserver,
            Component::ControllerManager,
            Component::Scheduler,
        ] {
            let name = component.name();
            assert_eq!(
                program(&tools, ControlPlane::OldestSupported, component),
                dir.path().join("kube-min").join(name)
            );
            assert_eq!(
                program(&tools, ControlPlane::Current, component),
                dir.path().join("bin").join(name)
            );
        }
        for component in [Component::Etcd, Component::Kwok] {
            assert_eq!(
                program(&tools, ControlPlane::OldestSupported, component),
                dir.path().join("bin").join(component.name())
            );
        }
    }

    #[test]
    fn defaults_leave_rates_and_audit_alone() {
        let options = ClusterOptions::default();
        assert_eq!(options.throughput, None);
        assert_eq!(options.audit, None);
        let sched: serde_json::Value =
            serde_yaml::from_str(&scheduler_config_yaml(Path::new("/k/s"), None).unwrap()).unwrap();
        assert_eq!(
            sched["clientConnection"],
            serde_json::json!({ "kubeconfig": "/k/s" })
        );
        assert_eq!(kwok_config_yaml(None).unwrap(), KWOK_STAGES);
    }

    #[test]
    fn throughput_and_audit_reach_the_command_lines_and_configs() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki::Pki::generate(None)
            .unwrap()
            .write(&dir.path().join("pki"))
            .unwrap();
        let layout = Layout {
            root: dir.path().into(),
            logs: dir.path().join("logs"),
            admin_kubeconfig: dir.path().join("admin.kubeconfig"),
            pki,
        };
        let options = ClusterOptions {
            throughput: Some(Throughput::high()),
            audit: Some(AuditOptions {
                policy: "apiVersion: audit.k8s.io/v1\nkind: Policy\n".into(),
            }),
            extra_apiserver_args: vec!["--v=1".into()],
            ..ClusterOptions::default()
        };
        let tools_dir = dir.path().join("tools");
        let specs = component_specs(&ComponentInputs {
            options: &options,
            tools: &fake_tools(&tools_dir),
            layout: &layout,
            ports: Ports {
                etcd_client: 1,
                etcd_peer: 2,
                apiserver: 3,
                controller_manager: 4,
                scheduler: 5,
            },
            kcm_kubeconfig: Path::new("/k/kcm"),
            scheduler_config: Path::new("/k/sched.yaml"),
            scheduler_kubeconfig: Path::new("/k/sched"),
            kwok_kubeconfig: Path::new("/k/kwok"),
            kwok_config: Path::new("/k/stages.yaml"),
            kwok_home: Path::new("/k/home"),
            audit_policy: Some(Path::new("/k/audit.yaml")),
        });
        let args = |c: Component| -> Vec<String> {
            specs[&c]
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let api = args(Component::Apiserver);
        let audit_log = format!(
            "--audit-log-path={}",
            dir.path().join("logs").join(AUDIT_LOG).display()
        );
        for expected in [
            "--audit-policy-file=/k/audit.yaml",
            audit_log.as_str(),
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ] {
            assert!(api.contains(&expected.to_string()), "{expected}: {api:?}");
        }
        assert_eq!(
            api.last().map(String::as_str),
            Some("--v=1"),
            "extra args last"
        );
        let kcm = args(Component::ControllerManager);
        for expected in [
            "--kube-api-qps=5000",
            "--kube-api-burst=10000",
            "--concurrent-job-syncs=50",
        ] {
            assert!(kcm.contains(&expected.to_string()), "{expected}: {kcm:?}");
        }

        let sched: serde_json::Value = serde_yaml::from_str(
            &scheduler_config_yaml(Path::new("/k/s"), Some(Throughput::high())).unwrap(),
        )
        .unwrap();
        assert_eq!(sched["clientConnection"]["qps"], 5000);
        assert_eq!(sched["clientConnection"]["burst"], 10000);
        let kwok = kwok_config_yaml(Some(Throughput::high())).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&kwok)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .collect();
        let last = docs.last().unwrap();
        assert_eq!(last["kind"].as_str(), Some("KwokConfiguration"));
        assert_eq!(
            last["options"]["podPlayStageParallelism"].as_u64(),
            Some(16)
        );
        let stages = serde_yaml::Deserializer::from_str(KWOK_STAGES).count();
        assert_eq!(docs.len(), stages + 1, "the Stages and the configuration");
    }

    fn fake_tools(dir: &Path) -> Tools {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for name in crate::tools::CLUSTER_BINARIES {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o755)
                .open(dir.join("bin").join(name))
                .unwrap();
        }
        Tools::from_dir(dir).unwrap()
    }
}
