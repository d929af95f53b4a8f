//! The cluster's network namespace: its addresses and routes, and how the
//! test process (on the host) reaches in.
//!
//! Every cluster runs in a network namespace of its own, created by its
//! spawner thread ([`super::process::Spawner`]) and gone with it. Inside:
//!
//! | what | address |
//! |---|---|
//! | `lo` | 127.0.0.1: etcd, the controller-manager, the scheduler, the operator's health and metrics ports |
//! | `node0` (one end of a veth pair whose other end stays inside too) | [`NODE_IP`]: the node address the apiserver advertises and the real node's kubelet, kube-proxy and CoreDNS serve on |
//! | Services | [`SERVICE_CIDR`], routed to `node0` and DNAT-ed by kube-proxy (real node) |
//! | the real node's pods | [`NODE_POD_CIDR`] on the `cni0` bridge (created by the CNI bridge plugin) |
//! | kwok pods | [`KWOK_POD_CIDR`], a `local` route on `lo`: nothing listens there, so connecting is refused at once, as for a pod that does not run |
//! | anything else | an `unreachable` default route: no packet leaves |
//!
//! All addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544),
//! so they clash with nothing real, and every cluster reuses them: each has
//! its own namespace. Nothing connects the namespace to the host's network.
//!
//! The test process and a human with `kubectl` reach the apiserver through a
//! [`Forwarder`]: a listener on the host's 127.0.0.1 at the same port the
//! apiserver listens on inside, so one kubeconfig works on both sides. Other
//! connections into the namespace (health probes, a test's HTTP target) use
//! sockets created inside it ([`ClusterNet`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::IntoRawFd;
use std::os::unix::io::FromRawFd;
use std::path::Path;
use std::process::{Child, Command};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::process::SpawnerHandle;

/// The node address inside every cluster's namespace (on `node0`).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// The device carrying [`NODE_IP`] (one end of a veth pair).
pub const NODE_DEVICE: &str = "node0";
/// The other end of [`NODE_DEVICE`]'s pair, also inside the namespace.
pub const NODE_PEER: &str = "node0-peer";
/// Service ClusterIPs.
pub const SERVICE_CIDR: &str = "198.19.128.0/17";
/// ClusterIP of the `kube-dns` Service (CoreDNS, with a real node).
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 128, 10);
/// Every pod address (kube-proxy's `clusterCIDR`).
pub const POD_CIDR: &str = "198.18.0.0/16";
/// The real node's pods (its `cni0` bridge is the first address).
pub const NODE_POD_CIDR: &str = "198.18.0.0/24";
/// The gateway of the real node's pods (`cni0`).
pub const NODE_POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The fake addresses kwok gives its pods.
pub const KWOK_POD_CIDR: &str = "198.18.128.0/17";
/// The real node's name.
pub const REAL_NODE_NAME: &str = "real-node";
/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The port of the local OCI registry on [`NODE_IP`] (`crate::registry`).
pub const REGISTRY_PORT: u16 = 5000;
/// The local registry's host (`<NODE_IP>:<REGISTRY_PORT>`): references
/// `198.19.0.1:5000/<repository>:<tag>` are pulled from it over plain HTTP.
pub const REGISTRY_HOST: &str = "198.19.0.1:5000";
/// Public registries the real node's containerd pulls from the local
/// registry instead (hosts.toml mirrors): the release's image names
/// (`ghcr.io/<namespace>/...`) resolve there without any other network, and
/// so do the public images operator-sdk insists on: Docker Hub's busybox
/// (`crate::registry::SDK_UPGRADE_INIT_IMAGE`) and quay.io's scorecard-test
/// (the bundle's scorecard configuration).
pub const MIRRORED_REGISTRIES: [&str; 3] = ["docker.io", "ghcr.io", "quay.io"];

#[cfg(test)]
#[test]
fn registry_host_is_the_node_ip() {
    assert_eq!(REGISTRY_HOST, format!("{NODE_IP}:{REGISTRY_PORT}"));
}

/// The ephemeral (client) ports inside every cluster namespace
/// (`net.ipv4.ip_local_port_range`, a per-namespace setting): above every
/// port [`free_port`] hands out for a listener, so an outgoing connection
/// can never hold the port a component is about to listen on.
pub const EPHEMERAL_PORTS: (u16, u16) = (61000, 65535);

/// A port for a listener inside a cluster: free on the host's loopback too
/// (so the same port can be forwarded from the host), below
/// [`EPHEMERAL_PORTS`], and never handed out twice by this process.
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if port >= EPHEMERAL_PORTS.0 {
            continue;
        }
        let mut handed = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if handed.insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port below {} after 1000 tries", EPHEMERAL_PORTS.0)
}

/// The commands (program and arguments) that give a fresh cluster namespace
/// its devices, routes and ephemeral port range (see the module docs).
pub(crate) fn setup_commands() -> Vec<Vec<String>> {
    let node_ip = format!("{NODE_IP}/32");
    let mut commands: Vec<Vec<String>> = [
        vec!["link", "set", "lo", "up"],
        // This kernel may lack the dummy device; a veth pair whose both
        // ends stay in the namespace carries the address as well (what
        // is routed to it goes nowhere).
        vec![
            "link",
            "add",
            NODE_DEVICE,
            "type",
            "veth",
            "peer",
            "name",
            NODE_PEER,
        ],
        vec!["addr", "add", &node_ip, "dev", NODE_DEVICE],
        vec!["link", "set", NODE_DEVICE, "up"],
        vec!["link", "set", NODE_PEER, "up"],
        vec!["route", "add", SERVICE_CIDR, "dev", NODE_DEVICE],
        vec!["route", "add", "local", KWOK_POD_CIDR, "dev", "lo"],
        vec!["route", "add", "unreachable", "default"],
    ]
    .into_iter()
    .map(|args| {
        std::iter::once("ip")
            .chain(args)
            .map(str::to_owned)
            .collect()
    })
    .collect();
    commands.push(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "echo '{} {}' > /proc/sys/net/ipv4/ip_local_port_range",
            EPHEMERAL_PORTS.0, EPHEMERAL_PORTS.1
        ),
    ]);
    commands
}

/// A handle on a cluster's network namespace: connect to or listen on its
/// addresses from the test process, and start processes inside it. Cheap to
/// clone; fails once the cluster is gone.
#[derive(Clone)]
pub struct ClusterNet {
    spawner: SpawnerHandle,
}

impl std::fmt::Debug for ClusterNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNet").finish_non_exhaustive()
    }
}

impl ClusterNet {
    pub(crate) fn new(spawner: SpawnerHandle) -> Self {
        Self { spawner }
    }

    fn socket(&self) -> Result<TcpSocket> {
        let fd = self.spawner.tcp_socket()?;
        // SAFETY: a fresh, non-blocking AF_INET stream socket we own.
        Ok(unsafe { TcpSocket::from_raw_fd(fd.into_raw_fd()) })
    }

    /// Connects to `addr` inside the cluster's namespace (bounded: 5 s).
    pub async fn connect(&self, addr: SocketAddr) -> Result<TcpStream> {
        let socket = self.socket()?;
        tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
            .await
            .with_context(|| format!("connecting to {addr} in the cluster: timed out"))?
            .with_context(|| format!("connecting to {addr} in the cluster"))
    }

    /// Listens on `addr` inside the cluster's namespace (port 0: any free
    /// port; read it from `local_addr`). Needs a tokio runtime.
    pub fn listen(&self, addr: SocketAddr) -> Result<TcpListener> {
        let socket = self.socket()?;
        socket.set_reuseaddr(true)?;
        socket
            .bind(addr)
            .with_context(|| format!("binding {addr} in the cluster"))?;
        socket
            .listen(1024)
            .with_context(|| format!("listening on {addr} in the cluster"))
    }

    /// Starts `command` inside the cluster's namespace, its stdout and
    /// stderr appended to `log`, in a process group of its own, killed by
    /// the kernel if the cluster's spawner thread ends (see
    /// [`super::process::spawn_logged`]).
    pub fn spawn(&self, command: Command, log: &Path) -> Result<Child> {
        self.spawner.spawn_command(command, log)
    }
}

/// Forwards connections to a port on the host's 127.0.0.1 to an address
/// inside the cluster's namespace, from a thread of its own (independent of
/// any test's runtime). Stops (and closes every forwarded connection) when
/// dropped.
#[derive(Debug)]
pub struct Forwarder {
    host: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Binds `127.0.0.1:<host_port>` on the host now (port 0: any free one;
    /// a clash shows at once as "address already in use") and forwards
    /// every connection to `target` inside the cluster's namespace.
    pub fn start(net: ClusterNet, host_port: u16, target: SocketAddr) -> Result<Self> {
        let host = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
        let listener = std::net::TcpListener::bind(host)
            .with_context(|| format!("binding the host side of the forwarder, {host}"))?;
        let host = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for the forwarder")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("forward-{}", host.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let accept = async {
                        loop {
                            let Ok((mut client, _)) = listener.accept().await else {
                                continue;
                            };
                            let net = net.clone();
                            tokio::spawn(async move {
                                if let Ok(mut upstream) = net.connect(target).await {
                                    let _ = client.set_nodelay(true);
                                    let _ = upstream.set_nodelay(true);
                                    let _ =
                                        tokio::io::copy_bidirectional(&mut client, &mut upstream)
                                            .await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime cancels every forwarded connection.
            })
            .context("starting the forwarder thread")?;
        Ok(Self {
            host,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The host address it listens on.
    pub fn host_addr(&self) -> SocketAddr {
        self.host
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_unique() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert!(ports.iter().all(|p| *p < EPHEMERAL_PORTS.0));
        let unique: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn addresses_are_in_the_benchmarking_range_and_do_not_overlap() {
        fn range(cidr: &str) -> (u32, u32) {
            let (base, bits) = cidr.split_once('/').unwrap();
            let base = u32::from(base.parse::<Ipv4Addr>().unwrap());
            let bits: u32 = bits.parse().unwrap();
            let size = 1u32 << (32 - bits);
            (base, base + size - 1)
        }
        let bench = range("198.18.0.0/15");
        let within = |(lo, hi): (u32, u32)| lo >= bench.0 && hi <= bench.1;
        let services = range(SERVICE_CIDR);
        let node_pods = range(NODE_POD_CIDR);
        let kwok_pods = range(KWOK_POD_CIDR);
        let pods = range(POD_CIDR);
        for r in [services, node_pods, kwok_pods, pods] {
            assert!(within(r));
        }
        let ip = |a: Ipv4Addr| u32::from(a);
        assert!(within((ip(NODE_IP), ip(NODE_IP))));
        let disjoint = |a: (u32, u32), b: (u32, u32)| a.1 < b.0 || b.1 < a.0;
        assert!(disjoint(services, pods));
        assert!(disjoint(node_pods, kwok_pods));
        assert!(node_pods.0 >= pods.0 && node_pods.1 <= pods.1);
        assert!(kwok_pods.0 >= pods.0 && kwok_pods.1 <= pods.1);
        assert!(disjoint((ip(NODE_IP), ip(NODE_IP)), services));
        assert!(disjoint((ip(NODE_IP), ip(NODE_IP)), pods));
        assert!(ip(DNS_SERVICE_IP) >= services.0 && ip(DNS_SERVICE_IP) <= services.1);
        assert_eq!(ip(NODE_POD_GATEWAY), node_pods.0 + 1);
    }

    #[test]
    fn setup_has_an_unreachable_default_route_and_high_ephemeral_ports() {
        let commands = setup_commands();
        assert_eq!(commands[0], ["ip", "link", "set", "lo", "up"]);
        assert!(
            commands.contains(
                &["ip", "route", "add", "unreachable", "default"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert!(commands.last().unwrap()[2].contains("ip_local_port_range"));
    }
}
