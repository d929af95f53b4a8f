//! The real node: kubelet, containerd (with runc and the CNI plugins),
//! kube-proxy and CoreDNS, all built from pinned sources by
//! `olm-tests/tools/build.sh`, next to the kwok nodes.
//!
//! Isolation (see `docs/local-cluster.md`):
//! - network: the cluster's own namespace ([`super::network`]); pods get
//!   addresses on a `cni0` bridge in it, Services are DNAT-ed by kube-proxy
//!   in it, CoreDNS answers on the node address in it.
//! - mounts and processes: containerd, the kubelet, kube-proxy and CoreDNS
//!   run in a mount namespace and a PID namespace of their own (a
//!   [`Spawner`] with [`Isolation::Node`]). Its init mounts fresh `/proc`,
//!   `/run`, `/var/lib` and `/var/log` file systems, so containerd's shim
//!   sockets, the pods' network namespaces, the CNI cache and every volume
//!   and overlay mount live and die with it; when the init dies, the kernel
//!   kills every process of the PID namespace, container shims and
//!   containers included, even if the test process was killed outright.
//! - host settings: the kubelet rewrites six host-wide sysctls
//!   (`vm.overcommit_memory`, `kernel.panic`, …) unless they already have
//!   its values. In the node's mount namespace those files are covered by
//!   bind mounts of small files that hold exactly those values, so the
//!   kubelet finds nothing to change and the host's values are never
//!   touched ([`KUBELET_SYSCTLS`]).
//! - cgroups: the kubelet's pods live under a cgroup root of their own
//!   ([`CgroupRoot`]), removed when the node stops.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::cgroups::{CGROUP_MOUNT, CgroupRoot};
use super::kubeconfig;
use super::network::{
    CLUSTER_DOMAIN, ClusterNet, DNS_SERVICE_IP, NODE_IP, NODE_POD_CIDR, NODE_POD_GATEWAY, POD_CIDR,
    REAL_NODE_NAME,
};
use super::pki::{CertAndKey, Pki, write_file};
use super::process::{Isolation, ManagedProcess, ProcessSpec, Processes, Spawner};
use super::{node_ready, probe};
use crate::tools::Tools;

/// Binaries (in the tools' `bin/`) the real node needs.
pub const NODE_BINARIES: [&str; 7] = [
    "kubelet",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "coredns",
];
/// CNI plugins (in the tools' `cni/`).
pub const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// The host-wide sysctls the kubelet sets at start-up
/// (`setupKernelTunables` in its container manager) and the values it
/// wants: masked in the node's mount namespace with exactly these values.
pub const KUBELET_SYSCTLS: [(&str, &str); 6] = [
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
    ("kernel/keys/root_maxkeys", "1000000"),
    ("kernel/keys/root_maxbytes", "25000000"),
];

/// The node's label (besides the kubelet's own `kubernetes.io/*` ones).
pub const REAL_NODE_LABEL: (&str, &str) = ("type", "real");

const KUBELET_PORT: u16 = 10250;
const KUBELET_HEALTHZ_PORT: u16 = 10248;
const KUBE_PROXY_HEALTHZ_PORT: u16 = 10256;
const KUBE_PROXY_METRICS_PORT: u16 = 10249;
const COREDNS_READY_PORT: u16 = 8181;

/// A process of the real node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeComponent {
    /// containerd (with its shims and runc).
    Containerd,
    /// The kubelet.
    Kubelet,
    /// kube-proxy (iptables mode).
    KubeProxy,
    /// CoreDNS (the cluster DNS, on the node address).
    CoreDns,
}

impl NodeComponent {
    /// Every node component, in start order.
    pub const ALL: [NodeComponent; 4] = [
        NodeComponent::Containerd,
        NodeComponent::Kubelet,
        NodeComponent::KubeProxy,
        NodeComponent::CoreDns,
    ];

    /// The binary (and log file) name.
    pub fn name(self) -> &'static str {
        match self {
            NodeComponent::Containerd => "containerd",
            NodeComponent::Kubelet => "kubelet",
            NodeComponent::KubeProxy => "kube-proxy",
            NodeComponent::CoreDns => "coredns",
        }
    }
}

/// Images the node imports into containerd before the kubelet starts.
#[derive(Clone, Debug, Default)]
pub struct NodeImages {
    /// The pod sandbox ("pause") image reference (containerd's pinned
    /// sandbox image; it must be among the archives).
    pub sandbox: String,
    /// OCI archives for `ctr images import`, each with its reference(s).
    pub archives: Vec<PathBuf>,
}

/// What the node is made from.
pub(crate) struct NodeInputs<'a> {
    pub tools: &'a Tools,
    pub root: &'a Path,
    pub pki: &'a Pki,
    pub api_url: &'a str,
    pub cluster_name: &'a str,
    pub images: NodeImages,
}

/// Files of the node (under `<cluster dir>/node`).
#[derive(Clone, Debug)]
struct NodeLayout {
    dir: PathBuf,
    logs: PathBuf,
    containerd_socket: PathBuf,
    kubelet_config: PathBuf,
    kubelet_kubeconfig: PathBuf,
    kube_proxy_config: PathBuf,
    coredns_kubeconfig: PathBuf,
    corefile: PathBuf,
}

impl NodeLayout {
    fn new(root: &Path) -> Self {
        let dir = root.join("node");
        Self {
            logs: root.join("logs"),
            containerd_socket: dir.join("containerd/containerd.sock"),
            kubelet_config: dir.join("kubelet/config.yaml"),
            kubelet_kubeconfig: dir.join("kubelet/kubeconfig"),
            kube_proxy_config: dir.join("kube-proxy/config.yaml"),
            coredns_kubeconfig: dir.join("coredns/kubeconfig"),
            corefile: dir.join("coredns/Corefile"),
            dir,
        }
    }

    fn log(&self, c: NodeComponent) -> PathBuf {
        self.logs.join(format!("{}.log", c.name()))
    }
}

/// The running (or prepared) real node. Dropping it kills every process of
/// its PID namespace and removes its cgroups.
pub(crate) struct RealNode {
    layout: NodeLayout,
    images: NodeImages,
    tools: Tools,
    processes: Processes<NodeComponent>,
    spawner: Option<Spawner>,
    cgroup: Option<CgroupRoot>,
    net: ClusterNet,
}

impl std::fmt::Debug for RealNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealNode")
            .field("dir", &self.layout.dir)
            .finish_non_exhaustive()
    }
}

impl RealNode {
    /// Writes the node's configuration, creates its cgroup root and enters
    /// its namespaces (the init of its PID namespace runs from here on).
    /// Starts nothing else: see [`RealNode::start`].
    pub fn prepare(
        inputs: &NodeInputs<'_>,
        net: &ClusterNet,
        netns: Arc<std::os::fd::OwnedFd>,
    ) -> Result<Self> {
        let tools = inputs.tools;
        let missing: Vec<String> = NODE_BINARIES
            .iter()
            .map(|b| tools.bin(b))
            .chain(CNI_PLUGINS.iter().map(|p| tools.dir().join("cni").join(p)))
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the real node's tools are missing ({}); build them with `bash olm-tests/tools/build.sh`",
                missing.join(", ")
            );
        }
        if inputs.images.archives.is_empty() {
            bail!("the real node needs images (at least the sandbox image)");
        }
        let layout = NodeLayout::new(inputs.root);
        for sub in [
            "containerd/root",
            "containerd/state",
            "kubelet/root",
            "kubelet/pod-logs",
            "kube-proxy",
            "coredns",
            "cni/net.d",
            "cni/ipam",
            "sysctl",
        ] {
            std::fs::create_dir_all(layout.dir.join(sub))
                .with_context(|| format!("creating {}", layout.dir.join(sub).display()))?;
        }
        let cgroup = CgroupRoot::create(Path::new(CGROUP_MOUNT))
            .context("creating the real node's cgroup root")?;
        let pki = inputs.pki;
        let kubeconfig_for = |path: &Path, who: &CertAndKey| -> Result<()> {
            kubeconfig::write(
                path,
                inputs.cluster_name,
                inputs.api_url,
                &pki.ca.cert_pem,
                &kubeconfig::Credentials::ClientCertificate {
                    cert_pem: &who.cert_pem,
                    key_pem: &who.key_pem,
                },
            )
        };
        kubeconfig_for(&layout.kubelet_kubeconfig, &pki.kubelet_client)?;
        let kube_proxy_kubeconfig = layout.dir.join("kube-proxy/kubeconfig");
        kubeconfig_for(&kube_proxy_kubeconfig, &pki.kube_proxy)?;
        kubeconfig_for(&layout.coredns_kubeconfig, &pki.coredns)?;
        let pki_dir = inputs.root.join("pki");
        let files = NodeFiles {
            dir: &layout.dir,
            tools,
            images: &inputs.images,
            ca: &pki_dir.join("ca.crt"),
            serving_cert: &pki_dir.join("kubelet.crt"),
            serving_key: &pki_dir.join("kubelet.key"),
            cgroup_root: &cgroup.kubelet_root(),
            kube_proxy_kubeconfig: &kube_proxy_kubeconfig,
            coredns_kubeconfig: &layout.coredns_kubeconfig,
        };
        for (path, text) in registry_hosts(
            &layout.dir.join("containerd/certs.d"),
            &pki_dir.join("ca.crt"),
        ) {
            std::fs::create_dir_all(path.parent().unwrap_or(&layout.dir))
                .with_context(|| format!("creating the directory of {}", path.display()))?;
            write_file(&path, text.as_bytes(), false)?;
        }
        for (path, text) in [
            (
                layout.dir.join("containerd/config.toml"),
                containerd_config(&files),
            ),
            (layout.kubelet_config.clone(), kubelet_config(&files)?),
            (layout.dir.join("kubelet/resolv.conf"), String::new()),
            (layout.kube_proxy_config.clone(), kube_proxy_config(&files)?),
            (layout.corefile.clone(), corefile(&files)),
            (
                layout.dir.join("cni/net.d/10-locust-node.conflist"),
                cni_config(&files)?,
            ),
        ] {
            write_file(&path, text.as_bytes(), false)?;
        }

        let ready = layout.dir.join("init.ready");
        let mut init = Command::new("bash");
        init.arg("-c")
            .arg(init_script(&layout.dir.join("sysctl"), &ready))
            .env("PATH", node_path(tools));
        let spawner = Spawner::with_isolation(
            &format!("{}-node", inputs.cluster_name),
            Isolation::Node {
                net: netns,
                init: Box::new(init),
                init_log: layout.logs.join("node-init.log"),
                ready,
            },
        )
        .context("entering the real node's mount and PID namespaces")?;

        let processes = node_specs(&layout, tools)
            .into_iter()
            .map(|(c, spec)| (c, ManagedProcess::new(spec)))
            .collect();
        Ok(Self {
            layout,
            images: inputs.images.clone(),
            tools: tools.clone(),
            processes: Processes::new(processes),
            spawner: Some(spawner),
            cgroup: Some(cgroup),
            net: net.clone(),
        })
    }

    fn spawner(&self) -> Result<&Spawner> {
        self.spawner.as_ref().context("the real node is stopped")
    }

    fn start_process(&self, c: NodeComponent) -> Result<()> {
        let spawner = self.spawner()?;
        let mut processes = self.processes.lock();
        processes
            .get_mut(&c)
            .with_context(|| format!("{} is not part of the node", c.name()))?
            .start(spawner)
    }

    /// Starts containerd, imports the images, starts the kubelet and waits
    /// for the Node to be Ready, then kube-proxy and CoreDNS (with the
    /// `kube-dns` Service and its RBAC). Bounded by `deadline`.
    pub async fn start(&self, client: &kube::Client, deadline: Instant) -> Result<NodeTimings> {
        let t0 = Instant::now();
        install_cluster_dns(client).await?;

        self.start_process(NodeComponent::Containerd)?;
        let socket = self.layout.containerd_socket.clone();
        self.processes
            .wait_until(
                &NodeComponent::Containerd,
                deadline,
                "containerd's socket",
                || {
                    let socket = socket.clone();
                    async move { Ok(socket.exists().then_some(())) }
                },
            )
            .await?;
        let containerd_ready = t0.elapsed();
        for archive in &self.images.archives {
            self.ctr(
                &["images", "import", "--platform", "linux/amd64"],
                Some(archive),
            )
            .with_context(|| format!("importing {} into containerd", archive.display()))?;
        }
        let images_imported = t0.elapsed();

        self.start_process(NodeComponent::Kubelet)?;
        self.processes
            .wait_until(
                &NodeComponent::Kubelet,
                deadline,
                "the real node to be Ready",
                || async {
                    let nodes: Api<Node> = Api::all(client.clone());
                    Ok(nodes
                        .get_opt(REAL_NODE_NAME)
                        .await?
                        .filter(node_ready)
                        .map(drop))
                },
            )
            .await?;
        let node_ready_at = t0.elapsed();

        self.start_process(NodeComponent::KubeProxy)?;
        self.start_process(NodeComponent::CoreDns)?;
        let net = &self.net;
        self.processes
            .wait_until(
                &NodeComponent::KubeProxy,
                deadline,
                "kube-proxy's /healthz",
                || async move {
                    let addr = (std::net::Ipv4Addr::LOCALHOST, KUBE_PROXY_HEALTHZ_PORT).into();
                    Ok(
                        probe::http_get(net, addr, "/healthz", Duration::from_secs(2))
                            .await
                            .ok()
                            .filter(|r| r.status == 200)
                            .map(drop),
                    )
                },
            )
            .await?;
        self.processes
            .wait_until(
                &NodeComponent::CoreDns,
                deadline,
                "CoreDNS's /ready",
                || async move {
                    let addr = (std::net::Ipv4Addr::LOCALHOST, COREDNS_READY_PORT).into();
                    Ok(probe::http_get(net, addr, "/ready", Duration::from_secs(2))
                        .await
                        .ok()
                        .filter(|r| r.status == 200)
                        .map(drop))
                },
            )
            .await?;
        Ok(NodeTimings {
            containerd_ready,
            images_imported,
            node_ready: node_ready_at,
            total: t0.elapsed(),
        })
    }

    /// Runs `ctr` against the node's containerd (namespace `k8s.io`, where
    /// the kubelet's images live), with `input` as its last argument.
    pub fn ctr(&self, args: &[&str], input: Option<&Path>) -> Result<String> {
        let mut ctr = Command::new(self.tools.bin("ctr"));
        ctr.arg("--address")
            .arg(&self.layout.containerd_socket)
            .args(["--namespace", "k8s.io"])
            .args(args);
        if let Some(input) = input {
            ctr.arg(input);
        }
        self.spawner()?.run(ctr)
    }

    /// The host PID of the node's PID-namespace init.
    pub fn init_pid(&self) -> Option<u32> {
        self.spawner.as_ref().and_then(Spawner::init_pid)
    }

    /// Stops the node: every process of its PID namespace is killed (the
    /// kubelet and containerd get SIGTERM first), then its cgroups go.
    pub fn stop(&mut self) {
        {
            let mut processes = self.processes.lock();
            for c in NodeComponent::ALL.iter().rev() {
                if let Some(p) = processes.get_mut(c) {
                    p.stop(libc::SIGTERM, Duration::from_secs(5));
                }
            }
        }
        // The init goes with its spawner thread, and with it every process
        // left in the PID namespace (shims, containers).
        if let Some(spawner) = self.spawner.take() {
            let init = spawner.init_pid();
            drop(spawner);
            if let Some(pid) = init {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        if let Some(mut cgroup) = self.cgroup.take()
            && let Err(error) = cgroup.remove(Duration::from_secs(10))
        {
            tracing::warn!(error = %format!("{error:#}"), "the real node's cgroups were not all removed");
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the time of [`RealNode::start`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeTimings {
    /// containerd listening.
    pub containerd_ready: Duration,
    /// Every image imported (and unpacked).
    pub images_imported: Duration,
    /// The Node Ready.
    pub node_ready: Duration,
    /// kube-proxy and CoreDNS ready too.
    pub total: Duration,
}

/// Everything the node's configuration files refer to.
struct NodeFiles<'a> {
    dir: &'a Path,
    tools: &'a Tools,
    images: &'a NodeImages,
    ca: &'a Path,
    serving_cert: &'a Path,
    serving_key: &'a Path,
    cgroup_root: &'a str,
    kube_proxy_kubeconfig: &'a Path,
    coredns_kubeconfig: &'a Path,
}

/// `PATH` of the node's processes: the tools first (containerd finds its
/// shim there, the kubelet `runc`?), then the system's (iptables, mount).
fn node_path(tools: &Tools) -> OsString {
    let mut path = OsString::from(tools.dir().join("bin"));
    path.push(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path
}

/// The init of the node's PID namespace (a bash script, so it reaps the
/// orphans re-parented to it): fresh `/proc` (this PID namespace's), `/run`,
/// `/var/lib` and `/var/log`, the sysctl masks, then wait forever.
fn init_script(sysctl_dir: &Path, ready: &Path) -> String {
    let mut script = String::from(
        "set -eu\n\
         mount -t proc proc /proc\n\
         mount -t tmpfs -o mode=0755 tmpfs /run\n\
         mount -t tmpfs -o mode=0755 tmpfs /var/lib\n\
         mount -t tmpfs -o mode=0755 tmpfs /var/log\n",
    );
    for (key, value) in KUBELET_SYSCTLS {
        let file = sysctl_dir.join(key.replace('/', "."));
        script.push_str(&format!(
            "printf '%s\\n' {value} > '{file}'\nmount --bind '{file}' /proc/sys/{key}\n",
            file = file.display()
        ));
    }
    script.push_str(&format!(
        "touch '{}'\ntrap 'exit 0' TERM\nwhile :; do sleep 3600 & wait $! || true; done\n",
        ready.display()
    ));
    script
}

/// containerd's `hosts.toml` files (its `certs.d` directory): the local
/// registry (HTTPS, its certificate signed by the cluster CA `ca`), and each
/// mirrored public registry served by the local registry only (the public
/// one is unreachable: nothing else is on the network).
fn registry_hosts(certs_d: &Path, ca: &Path) -> Vec<(PathBuf, String)> {
    let local = format!("https://{}", super::network::REGISTRY_HOST);
    let host = |server: &str| {
        format!(
            "server = \"{server}\"\n\n[host.\"{local}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
            ca.display()
        )
    };
    let mut files = vec![(
        certs_d
            .join(super::network::REGISTRY_HOST)
            .join("hosts.toml"),
        host(&local),
    )];
    for public in super::network::MIRRORED_REGISTRIES {
        // containerd's name for Docker Hub's API host.
        let server = match public {
            "docker.io" => "https://registry-1.docker.io".to_owned(),
            other => format!("https://{other}"),
        };
        files.push((certs_d.join(public).join("hosts.toml"), host(&server)));
    }
    files
}

fn containerd_config(f: &NodeFiles<'_>) -> String {
    let dir = f.dir.join("containerd");
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "{sandbox}"
    # The local registry (plain HTTP) and the public registries it mirrors.
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "{certs_d}"

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    # No CAP_SYS_RESOURCE on some VMs: runc cannot lower oom_score_adj.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "{runc}"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["{cni_bin}"]
      conf_dir = "{cni_conf}"

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.nri.v1.nri']
    disable = true
"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        socket = dir.join("containerd.sock").display(),
        sandbox = f.images.sandbox,
        certs_d = dir.join("certs.d").display(),
        runc = f.tools.bin("runc").display(),
        cni_bin = f.tools.dir().join("cni").display(),
        cni_conf = f.dir.join("cni/net.d").display(),
    )
}

fn kubelet_config(f: &NodeFiles<'_>) -> Result<String> {
    let dir = f.dir.join("kubelet");
    Ok(crate::yaml::to_string(&json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        // This machine may have cgroup v1; Kubernetes ≥ 1.35 refuses it
        // unless told otherwise.
        "failCgroupV1": false,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f.cgroup_root,
        "cgroupsPerQOS": true,
        "containerRuntimeEndpoint": format!("unix://{}", f.dir.join("containerd/containerd.sock").display()),
        "address": NODE_IP.to_string(),
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "tlsCertFile": f.serving_cert,
        "tlsPrivateKeyFile": f.serving_key,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": f.ca},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [DNS_SERVICE_IP.to_string()],
        "clusterDomain": CLUSTER_DOMAIN,
        // Pods get the cluster's search domains and nothing of the host's.
        "resolvConf": dir.join("resolv.conf"),
        "podLogsDir": dir.join("pod-logs"),
        "failSwapOn": false,
        "protectKernelDefaults": false,
        "serializeImagePulls": false,
        // Images are imported, not pulled: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        // A busy shared disk must not evict the tests' pods.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "oomScoreAdj": 0,
        "maxPods": 110,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "registerNode": true,
        "shutdownGracePeriod": "0s",
    }))?)
}

fn kube_proxy_config(f: &NodeFiles<'_>) -> Result<String> {
    Ok(crate::yaml::to_string(&json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": f.kube_proxy_kubeconfig},
        "hostnameOverride": REAL_NODE_NAME,
        "bindAddress": NODE_IP.to_string(),
        "healthzBindAddress": format!("127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}"),
        "metricsBindAddress": format!("127.0.0.1:{KUBE_PROXY_METRICS_PORT}"),
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "oomScoreAdj": 0,
        // Leave the host-wide conntrack table size and timeouts alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s"},
    }))?)
}

fn corefile(f: &NodeFiles<'_>) -> String {
    // No `forward`: nothing outside the cluster is reachable (or asked).
    format!(
        ".:53 {{\n    bind {NODE_IP}\n    errors\n    ready 127.0.0.1:{COREDNS_READY_PORT}\n    \
         kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n        kubeconfig {}\n        \
         pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 5\n    }}\n    \
         cache 5\n}}\n",
        f.coredns_kubeconfig.display()
    )
}

fn cni_config(f: &NodeFiles<'_>) -> Result<String> {
    Ok(serde_json::to_string_pretty(&json!({
        "cniVersion": "1.0.0",
        "name": "locust-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR, "gateway": NODE_POD_GATEWAY.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": f.dir.join("cni/ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    }))?)
}

/// Command lines of the node's processes.
fn node_specs(layout: &NodeLayout, tools: &Tools) -> BTreeMap<NodeComponent, ProcessSpec> {
    let path = node_path(tools);
    let arg = |s: &str| OsString::from(s);
    let flag = |name: &str, value: &Path| {
        let mut f = OsString::from(format!("--{name}="));
        f.push(value);
        f
    };
    NodeComponent::ALL
        .iter()
        .map(|&c| {
            let args = match c {
                NodeComponent::Containerd => vec![
                    arg("--config"),
                    layout.dir.join("containerd/config.toml").into_os_string(),
                ],
                NodeComponent::Kubelet => vec![
                    flag("config", &layout.kubelet_config),
                    flag("kubeconfig", &layout.kubelet_kubeconfig),
                    flag("root-dir", &layout.dir.join("kubelet/root")),
                    arg(&format!("--hostname-override={REAL_NODE_NAME}")),
                    arg(&format!("--node-ip={NODE_IP}")),
                    arg(&format!(
                        "--node-labels={}={}",
                        REAL_NODE_LABEL.0, REAL_NODE_LABEL.1
                    )),
                    arg("--v=2"),
                ],
                NodeComponent::KubeProxy => {
                    vec![flag("config", &layout.kube_proxy_config), arg("--v=2")]
                }
                NodeComponent::CoreDns => {
                    vec![arg("-conf"), layout.corefile.clone().into_os_string()]
                }
            };
            let program = if c == NodeComponent::CoreDns {
                tools.bin("coredns")
            } else {
                tools.bin(c.name())
            };
            (
                c,
                ProcessSpec {
                    name: c.name(),
                    program,
                    args,
                    env: vec![(OsString::from("PATH"), path.clone())],
                    cwd: layout.dir.clone(),
                    log: layout.log(c),
                },
            )
        })
        .collect()
}

/// The RBAC CoreDNS needs, and the `kube-dns` Service with a hand-made
/// EndpointSlice pointing at CoreDNS on the node address.
async fn install_cluster_dns(client: &kube::Client) -> Result<()> {
    apply(
        Api::<ClusterRole>::all(client.clone()),
        json!({
            "metadata": {"name": "system:coredns"},
            "rules": [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        }),
    )
    .await?;
    apply(
        Api::<ClusterRoleBinding>::all(client.clone()),
        json!({
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
        }),
    )
    .await?;
    apply::<Service>(
        Api::namespaced(client.clone(), "kube-system"),
        json!({
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "clusterIP": DNS_SERVICE_IP.to_string(),
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        }),
    )
    .await?;
    apply::<EndpointSlice>(
        Api::namespaced(client.clone(), "kube-system"),
        json!({
            "metadata": {
                "name": "kube-dns-node",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": "local-cluster",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [NODE_IP.to_string()], "conditions": {"ready": true}}],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        }),
    )
    .await
}

/// Server-side applies the `K` whose metadata and content are `object` (its
/// `apiVersion` and `kind` are `K`'s) through `api`, as `local-cluster`,
/// taking over any field.
async fn apply<K>(api: Api<K>, mut object: serde_json::Value) -> Result<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    object["apiVersion"] = K::api_version(&()).into();
    object["kind"] = K::kind(&()).into();
    let object: K = serde_json::from_value(object)?;
    let name = object.name_any();
    let what = match object.namespace() {
        Some(ns) => format!("{} {ns}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    };
    api.patch(
        &name,
        &PatchParams::apply("local-cluster").force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {what}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_masks_every_kubelet_sysctl_before_it_reports_ready() {
        let script = init_script(Path::new("/n/sysctl"), Path::new("/n/init.ready"));
        let ready_at = script.find("touch '/n/init.ready'").unwrap();
        for (key, value) in KUBELET_SYSCTLS {
            let mount = format!(
                "mount --bind '/n/sysctl/{}' /proc/sys/{key}",
                key.replace('/', ".")
            );
            let at = script
                .find(&mount)
                .unwrap_or_else(|| panic!("{mount} in {script}"));
            assert!(at < ready_at);
            assert!(script.contains(&format!(
                "printf '%s\\n' {value} > '/n/sysctl/{}'",
                key.replace('/', ".")
            )));
        }
        for fs in [
            "proc proc /proc",
            "tmpfs /run",
            "tmpfs /var/lib",
            "tmpfs /var/log",
        ] {
            assert!(script.find(fs).unwrap() < ready_at, "{fs}");
        }
    }
}
