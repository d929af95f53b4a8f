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
//!
//! Files: `options.rs` ([`ClusterOptions`], [`Component`], [`Ports`]),
//! `commands.rs` (the components' command lines and configuration files,
//! from the options, the [`Tools`] and the cluster directory), `process.rs`
//! (child processes), `network.rs`, `pki.rs`, `kubeconfig.rs`, `pods.rs` and
//! `nodes.rs` (kwok), `node.rs` and `cgroups.rs` (the real node); this file
//! starts, probes and stops a [`Cluster`].

mod cgroups;
mod commands;
mod kubeconfig;
pub mod network;
mod node;
mod nodes;
mod options;
mod pki;
mod pods;
mod probe;
pub(crate) mod process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    CUSTOM_STATUS_ANNOTATION, CUSTOM_STATUS_VALUE, JOB_NAME_LABEL, first_container_state,
    pod_log_tail, pod_phase, pod_running, running_status_patch, terminated_status_patch,
    waiting_status_patch,
};

pub use network::{
    CLUSTER_DOMAIN, ClusterNet, MIRRORED_REGISTRIES, NODE_IP, REAL_NODE_NAME, REGISTRY_HOST,
    REGISTRY_PORT,
};
pub use node::{KUBELET_SYSCTLS, NodeComponent, NodeImages, NodeTimings, REAL_NODE_LABEL};

use crate::tools::Tools;
use commands::{ComponentInputs, component_specs, kwok_config_yaml, scheduler_config_yaml};
pub use network::Forwarder;
pub use options::{
    AUDIT_LOG, AuditOptions, ClusterOptions, Component, ControlPlane, Ports, Throughput,
};
pub(crate) use process::ChildProcess;
use process::{ManagedProcess, Processes, Spawner};
pub use process::{last_lines, log_tail};

/// Environment variable: when `1`, a failed cluster's directory (logs, PKI,
/// kubeconfigs, etcd data) is kept and its path printed.
pub const KEEP_CLUSTER_ENV: &str = "LOCUST_KEEP_CLUSTER";

/// Issuer (and audience) of ServiceAccount tokens.
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

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
    processes: Processes<Component>,
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
            processes: Processes::new(processes),
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
        self.processes
            .wait_until(
                &Component::ControllerManager,
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

    /// Runs `f` on `component`'s process (under the lock).
    fn with_process<T>(
        &self,
        component: Component,
        f: impl FnOnce(&mut ManagedProcess) -> T,
    ) -> Result<T> {
        let mut processes = self.processes.lock();
        let process = processes
            .get_mut(&component)
            .with_context(|| format!("{component} is not part of this cluster"))?;
        Ok(f(process))
    }

    fn start_process(&self, component: Component) -> Result<()> {
        self.with_process(component, |process| process.start(&self.spawner))?
    }

    async fn wait_ready(&self, component: Component, deadline: Instant) -> Result<()> {
        let what = format!("{component} to become ready");
        match component {
            Component::Etcd => {
                let addr = loopback(self.ports.etcd_client);
                self.processes
                    .wait_until(&component, deadline, &what, || async move {
                        let r = probe::http_get(&self.net, addr, "/health", Duration::from_secs(5))
                            .await?;
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
                self.processes
                    .wait_until(&component, deadline, &what, || {
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
                self.processes
                    .wait_until(
                        &component,
                        deadline,
                        "every fake node Ready and untainted",
                        || async {
                            let nodes: Api<Node> = Api::all(self.client.clone());
                            let listed = nodes.list(&ListParams::default()).await?.items;
                            let ready = self.node_names.iter().all(|name| {
                                listed.iter().any(|n| {
                                    n.metadata.name.as_deref() == Some(name.as_str())
                                        && node_ready(n)
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
        self.with_process(component, |process| {
            process.stop(libc::SIGTERM, Duration::from_secs(15));
        })
    }

    /// Kills `component` at once (SIGKILL to its process group), like a crash.
    pub fn kill_component(&self, component: Component) -> Result<()> {
        self.with_process(component, |process| {
            process.stop(libc::SIGKILL, Duration::from_secs(5));
        })
    }

    /// Restarts a stopped `component` with the same ports, data and
    /// configuration, and waits (up to `timeout`) until it is ready again.
    pub async fn start_component(&self, component: Component, timeout: Duration) -> Result<()> {
        self.start_process(component)?;
        self.wait_ready(component, Instant::now() + timeout).await
    }

    /// The process id of `component`, while it runs.
    pub fn component_pid(&self, component: Component) -> Option<u32> {
        let mut processes = self.processes.lock();
        let process = processes.get_mut(&component)?;
        if process.is_running() {
            process.pid()
        } else {
            None
        }
    }

    /// Whether `component`'s process is running.
    pub fn component_running(&self, component: Component) -> bool {
        self.processes
            .lock()
            .get_mut(&component)
            .is_some_and(ManagedProcess::is_running)
    }

    /// Stops every component gracefully, in reverse start order, and removes
    /// the cluster directory.
    pub fn stop(mut self) {
        if let Some(mut node) = self.node.take() {
            node.stop();
        }
        let mut processes = self.processes.lock();
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
        let token = self.service_account_token(namespace, name, ttl).await?;
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

    /// A token for ServiceAccount `namespace/name` (TokenRequest API, valid
    /// for `ttl`, at least 10 minutes).
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<String> {
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
        Ok(token)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut node) = self.node.take() {
            node.stop();
        }
        {
            let mut processes = self.processes.lock();
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
}
