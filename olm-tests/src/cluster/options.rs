//! What a cluster is made of and how it runs: its components, the options
//! of [`Cluster::start`](super::Cluster::start) and its ports.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::{NodeCapacity, NodeImages, network};
use crate::tools::Tools;

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

/// How to start a [`Cluster`](super::Cluster).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Tools to use; `None`: [`Tools::locate`].
    pub tools: Option<Tools>,
    /// Number of fake nodes (default 2).
    pub nodes: usize,
    /// Capacity of each fake node.
    pub node_capacity: NodeCapacity,
    /// Also run a real node ([`REAL_NODE_NAME`](super::REAL_NODE_NAME): kubelet, containerd, runc,
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
/// [`Cluster::audit_log_path`](super::Cluster::audit_log_path), synchronously (`--audit-log-mode=blocking`),
/// without rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// The audit `Policy` (`audit.k8s.io/v1`), YAML or JSON.
    pub policy: String,
}

/// Name of the audit log in the cluster's `logs/` directory.
pub const AUDIT_LOG: &str = "audit.log";

impl ClusterOptions {
    /// The defaults, for a cluster named `name`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A cluster with the real node only (no kwok nodes), for tests whose
    /// pods must really run.
    pub fn real_node() -> Self {
        Self {
            nodes: 0,
            real_node: true,
            ..Self::default()
        }
    }

    /// [`ClusterOptions::real_node`] from `tools`, named `name`.
    pub fn real_node_from(tools: Tools, name: impl Into<String>) -> Self {
        Self {
            tools: Some(tools),
            name: name.into(),
            ..Self::real_node()
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
    pub(super) fn pick() -> Result<Self> {
        Ok(Self {
            etcd_client: network::free_port()?,
            etcd_peer: network::free_port()?,
            apiserver: network::free_port()?,
            controller_manager: network::free_port()?,
            scheduler: network::free_port()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
