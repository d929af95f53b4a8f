//! Installing the operator into a local cluster the way the bundle does (CRD
//! from the generated bundle, RBAC from the operator's own declarations, a
//! ServiceAccount), and running the real operator binary as a process under
//! that ServiceAccount's token.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use crate::cluster::{Cluster, ClusterNet};
use crate::wait::wait_for;

/// Namespace the operator runs in (its Lease lives there).
pub const OPERATOR_NAMESPACE: &str = "locust-system";
/// The operator's ServiceAccount (as in the CSV).
pub const SERVICE_ACCOUNT: &str = "locust-k8s-operator";

/// The workspace root (where bundle/ and target/ live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The CRD exactly as the generator wrote it into the bundle.
pub fn bundle_crd() -> Result<CustomResourceDefinition> {
    bundle_file_crd(manifests_gen::CRD_PATH)
}

/// The LocustSchedule CRD exactly as the generator wrote it into the bundle.
pub fn bundle_schedule_crd() -> Result<CustomResourceDefinition> {
    bundle_file_crd(manifests_gen::SCHEDULE_CRD_PATH)
}

fn bundle_file_crd(relative: &str) -> Result<CustomResourceDefinition> {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run `make generate`)", path.display()))?;
    crate::yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The operator binary built by `cargo build -p locust-k8s-operator`
/// (`make test` builds it first); `LOCUST_OPERATOR_BIN` overrides.
pub fn operator_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("LOCUST_OPERATOR_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug/locust-k8s-operator");
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build -p locust-k8s-operator` first (`make test` does)",
            path.display()
        );
    }
    Ok(path)
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = obj.name_any();
    let pp = PatchParams::apply("olm-tests").force();
    api.patch(&name, &pp, &Patch::Apply(obj))
        .await
        .with_context(|| format!("applying {name}"))
}

/// Applies a CRD and waits until it is Established.
pub async fn install_crd(client: &Client, crd: &CustomResourceDefinition) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = crd.clone();
    crd.metadata.managed_fields = None;
    crd.metadata.resource_version = None;
    apply(&api, &crd).await?;
    let name = crd.name_any();
    wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        let api = api.clone();
        let name = name.clone();
        async move {
            let crd = api.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        }
    })
    .await
    .context("waiting for the CRD to be Established")
}

/// The bundle CRD with the conversion strategy set to `None` (no webhook), for
/// tests that use only v2.
pub fn crd_without_webhook(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.spec.conversion = None;
    crd
}

/// Creates the operator's namespace, ServiceAccount and RBAC (ClusterRole +
/// binding, Role + binding for its Lease) from `locust_operator::rbac`.
pub async fn install_rbac(client: &Client) -> Result<()> {
    install_rbac_as(
        client,
        SERVICE_ACCOUNT,
        locust_operator::rbac::cluster_rules(),
        locust_operator::rbac::namespaced_rules(),
    )
    .await
}

/// Creates the operator namespace, ServiceAccount `name`, and a ClusterRole,
/// ClusterRoleBinding, Role (in the operator namespace) and RoleBinding, all
/// named `name`, granting `cluster_rules` and `namespaced_rules` (the RBAC
/// ablation test grants the operator's rules minus one).
pub async fn install_rbac_as(
    client: &Client,
    name: &str,
    cluster_rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    namespaced_rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) -> Result<()> {
    let meta = |namespace: Option<&str>| ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..ObjectMeta::default()
    };
    let role_ref = |kind: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    };
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(OPERATOR_NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    apply(&Api::<Namespace>::all(client.clone()), &ns).await?;
    let in_operator_ns = Some(OPERATOR_NAMESPACE);
    let sa = ServiceAccount {
        metadata: meta(in_operator_ns),
        ..ServiceAccount::default()
    };
    apply(&Api::namespaced(client.clone(), OPERATOR_NAMESPACE), &sa).await?;
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(OPERATOR_NAMESPACE.into()),
        ..Subject::default()
    };
    let cr = ClusterRole {
        metadata: meta(None),
        rules: Some(cluster_rules),
        ..ClusterRole::default()
    };
    apply(&Api::all(client.clone()), &cr).await?;
    let crb = ClusterRoleBinding {
        metadata: meta(None),
        role_ref: role_ref("ClusterRole"),
        subjects: Some(vec![subject.clone()]),
    };
    apply(&Api::all(client.clone()), &crb).await?;
    let role = Role {
        metadata: meta(in_operator_ns),
        rules: Some(namespaced_rules),
    };
    apply(&Api::namespaced(client.clone(), OPERATOR_NAMESPACE), &role).await?;
    let rb = RoleBinding {
        metadata: meta(in_operator_ns),
        role_ref: role_ref("Role"),
        subjects: Some(vec![subject]),
    };
    apply(&Api::namespaced(client.clone(), OPERATOR_NAMESPACE), &rb).await?;
    Ok(())
}

/// Creates (or reuses) a namespace with the given labels.
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}

/// A port for a listener inside a cluster (see [`crate::cluster::network::free_port`]).
pub fn free_port() -> Result<u16> {
    crate::cluster::network::free_port()
}

/// The operator binary running as a child process inside the cluster's
/// network namespace (where it reaches the apiserver, the pods and, for the
/// apiserver, its webhooks), killed with the cluster.
pub struct OperatorProcess {
    child: Option<Child>,
    /// The exit status, once known (reaped by a signal or seen exited).
    exited: Option<ExitStatus>,
    /// When the process was forked.
    started: Instant,
    net: ClusterNet,
    /// Health probe port (`/healthz`, `/readyz`) on 127.0.0.1 in the cluster.
    pub health_port: u16,
    /// Metrics port (`/metrics`) on 127.0.0.1 in the cluster.
    pub metrics_port: u16,
    /// The log file (stdout and stderr of the process), kept in the cluster
    /// directory.
    pub log_path: PathBuf,
}

/// `RUST_LOG` of the operators the tests start: debug logs of the operator
/// and of kube-runtime.
pub const DEBUG_LOG: &str =
    "info,locust_operator=debug,locust_k8s_operator=debug,kube_runtime=debug";

/// How to start the operator: [`OperatorProcess::start`].
#[derive(Clone, Debug)]
pub struct OperatorCommand<'a> {
    /// The operator binary.
    pub bin: PathBuf,
    /// Its kubeconfig (`KUBECONFIG`).
    pub kubeconfig: &'a Path,
    /// Names the log (`<cluster dir>/operator-<tag>.log`) and the pod
    /// (`POD_NAME=operator-<tag>`).
    pub tag: &'a str,
    /// Arguments after the health and metrics addresses.
    pub args: &'a [String],
    /// A program and its arguments that end by exec'ing the operator's
    /// command line, appended to it (e.g. `unshare … setpriv …`), so the
    /// process id is still the operator's; empty: none.
    pub wrapper: &'a [String],
    /// `RUST_LOG`; `None` removes it (production logging).
    pub rust_log: Option<&'a str>,
}

/// The operator's arguments for one replica without webhooks:
/// `--leader-elect=false --disable-webhooks`.
pub fn single_replica_args() -> Vec<String> {
    vec!["--leader-elect=false".into(), "--disable-webhooks".into()]
}

impl<'a> OperatorCommand<'a> {
    /// The built operator binary ([`operator_binary`]) with `kubeconfig`,
    /// `tag` and `args`, no wrapper, [`DEBUG_LOG`].
    pub fn new(kubeconfig: &'a Path, tag: &'a str, args: &'a [String]) -> Result<Self> {
        Ok(Self {
            bin: operator_binary()?,
            kubeconfig,
            tag,
            args,
            wrapper: &[],
            rust_log: Some(DEBUG_LOG),
        })
    }
}

impl OperatorProcess {
    /// Starts the operator with `kubeconfig` and `args` (health and metrics
    /// ports are chosen here). Its log goes to `<cluster dir>/operator-<tag>.log`.
    pub fn spawn(cluster: &Cluster, kubeconfig: &Path, tag: &str, args: &[String]) -> Result<Self> {
        Self::start(cluster, &OperatorCommand::new(kubeconfig, tag, args)?)
    }

    /// [`OperatorProcess::spawn`] with [`single_replica_args`].
    pub fn spawn_single_replica(cluster: &Cluster, kubeconfig: &Path, tag: &str) -> Result<Self> {
        Self::spawn(cluster, kubeconfig, tag, &single_replica_args())
    }

    /// Like [`OperatorProcess::spawn`], with the operator's command line
    /// appended to `wrapper` (a program and its arguments that end by
    /// exec'ing the rest, e.g. `unshare … setpriv …`), so the process id is
    /// still the operator's.
    pub fn spawn_wrapped(
        cluster: &Cluster,
        kubeconfig: &Path,
        tag: &str,
        args: &[String],
        wrapper: &[String],
    ) -> Result<Self> {
        let command = OperatorCommand {
            wrapper,
            ..OperatorCommand::new(kubeconfig, tag, args)?
        };
        Self::start(cluster, &command)
    }

    /// Starts the operator as `command` says, in the cluster's network
    /// namespace (it dies with the cluster).
    pub fn start(cluster: &Cluster, command: &OperatorCommand<'_>) -> Result<Self> {
        let OperatorCommand {
            bin,
            kubeconfig,
            tag,
            args,
            wrapper,
            rust_log,
        } = command;
        let health_port = free_port()?;
        let metrics_port = free_port()?;
        let log_path = cluster.dir().join(format!("operator-{tag}.log"));
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
            .env("POD_NAME", format!("operator-{tag}"));
        match rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd.arg(format!(
            "--health-probe-bind-address=127.0.0.1:{health_port}"
        ))
        .arg(format!("--metrics-bind-address=127.0.0.1:{metrics_port}"));
        // Plain-HTTP metrics for the tests that scrape them, unless asked.
        if !args.iter().any(|a| a.starts_with("--metrics-secure")) {
            cmd.arg("--metrics-secure=false");
        }
        cmd.args(args.iter());
        let net = cluster.net();
        let started = Instant::now();
        let child = net
            .spawn(cmd, &log_path)
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self {
            child: Some(child),
            exited: None,
            started,
            net,
            health_port,
            metrics_port,
            log_path,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` log lines (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        crate::cluster::log_tail(&self.log_path, n)
    }

    /// GET a path on the health port; returns the status code.
    pub async fn probe(&self, path: &str) -> Result<u16> {
        http_get(&self.net, self.health_port, path)
            .await
            .map(|(code, _)| code)
    }

    /// The cluster network namespace it runs in.
    pub fn net(&self) -> &ClusterNet {
        &self.net
    }

    /// GET /metrics.
    pub async fn metrics(&self) -> Result<String> {
        http_get(&self.net, self.metrics_port, "/metrics")
            .await
            .map(|(_, body)| body)
    }

    /// GET a path on the health port; the status code and body.
    pub async fn health(&self, path: &str) -> Result<(u16, String)> {
        http_get(&self.net, self.health_port, path).await
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Duration> {
        let start = std::time::Instant::now();
        let res = wait_for(timeout, Duration::from_millis(20), || async {
            Ok(matches!(self.probe("/readyz").await, Ok(200)).then_some(()))
        })
        .await;
        if let Err(e) = res {
            let why = self
                .health("/readyz")
                .await
                .map(|(_, b)| b)
                .unwrap_or_default();
            return Err(e.context(format!(
                "operator never became ready ({why}); log:\n{}",
                self.log_tail(40)
            )));
        }
        Ok(start.elapsed())
    }

    /// Waits until the operator is ready to reconcile — it logged "caches
    /// synced" (which happens only after it acquired the lease) and `/readyz`
    /// answers 200 — probing every 5 ms; returns the time since the process
    /// was started (the start-up time the benchmark measures).
    pub async fn wait_synced(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = self.started + timeout;
        let mut offset = 0usize;
        let mut synced = false;
        loop {
            if let Some(status) = self.exit_status() {
                bail!(
                    "the operator exited with {status} before it was ready; log:\n{}",
                    self.log_tail(30)
                );
            }
            if !synced {
                let mut text = String::new();
                if let Ok(mut f) = std::fs::File::open(&self.log_path) {
                    let _ = f.read_to_string(&mut text);
                }
                // Search only what is new (keeping a margin for a split line).
                let from = offset.saturating_sub(64).min(text.len());
                synced = text
                    .get(from..)
                    .is_some_and(|t| t.contains("caches synced"));
                offset = text.len();
            }
            if synced && matches!(self.probe("/readyz").await, Ok(200)) {
                return Ok(self.started.elapsed());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the operator was not ready after {timeout:?}; log:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The exit status, once the process ended (by itself or by a signal).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.exited = Some(status);
            self.child = None;
        }
        self.exited
    }

    /// Sends a signal (e.g. `libc::SIGKILL`, `libc::SIGTERM`) and waits (bounded) for the exit.
    pub fn signal(&mut self, signal: libc::c_int) -> Option<ExitStatus> {
        self.signal_within(signal, Duration::from_secs(10))
    }

    /// SIGTERM (the operator releases its lease and exits), SIGKILL after 15 s.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        self.signal_within(libc::SIGTERM, Duration::from_secs(15))
    }

    /// Sends `signal`, waits up to `grace` for the exit, then kills the
    /// process; the exit status (also when it had already exited).
    fn signal_within(&mut self, signal: libc::c_int, grace: Duration) -> Option<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return self.exited;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid, not reaped yet.
            unsafe {
                libc::kill(pid, signal);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.exited = Some(status);
                return self.exited;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        self.exited = child.wait().ok();
        self.exited
    }

    /// SIGKILL, as a node loss or OOM would.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.0 GET on 127.0.0.1:`port` in the cluster's network
/// namespace (status code, body).
pub async fn http_get(net: &ClusterNet, port: u16, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let mut stream = tokio::time::timeout(Duration::from_secs(2), net.connect(addr))
        .await
        .context("connect timeout")??;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .context("read timeout")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Installs the CRD (no conversion webhook) and RBAC, and returns a kubeconfig
/// for the operator's ServiceAccount.
pub async fn install_operator_prereqs(cluster: &Cluster) -> Result<PathBuf> {
    let client = cluster.admin_client();
    install_crd(&client, &crd_without_webhook(bundle_crd()?)).await?;
    install_crd(&client, &bundle_schedule_crd()?).await?;
    install_rbac(&client).await?;
    operator_kubeconfig(cluster, SERVICE_ACCOUNT).await
}

/// A kubeconfig (valid for an hour) for ServiceAccount `account` of the
/// operator's namespace.
pub async fn operator_kubeconfig(cluster: &Cluster, account: &str) -> Result<PathBuf> {
    cluster
        .service_account_kubeconfig(OPERATOR_NAMESPACE, account, Duration::from_secs(3600))
        .await
}

/// A throw-away CA for webhook serving certificates.
pub struct WebhookCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl WebhookCa {
    /// A fresh self-signed CA, valid for a day.
    pub fn generate() -> Result<Self> {
        use rcgen::{BasicConstraints, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate()?;
        let mut ca = day_params(
            "olm-tests webhook CA",
            vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ],
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(ca, ca_key)?,
        })
    }

    /// The CA certificate (PEM), for `caBundle`.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A new serving certificate for 127.0.0.1/localhost signed by this CA:
    /// (`tls.crt`, `tls.key`) PEM.
    pub fn issue(&self) -> Result<(String, String)> {
        use rcgen::{ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};
        let key = KeyPair::generate()?;
        let mut leaf = day_params(
            "locust-k8s-operator webhook",
            vec![KeyUsagePurpose::DigitalSignature],
        );
        leaf.subject_alt_names = vec![
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into()?),
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Certificate parameters for `common_name` with `key_usages`, valid from an
/// hour ago for a day.
fn day_params(
    common_name: &str,
    key_usages: Vec<rcgen::KeyUsagePurpose>,
) -> rcgen::CertificateParams {
    let now = time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = key_usages;
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(1);
    params
}

/// Writes a webhook serving certificate for 127.0.0.1/localhost (`tls.crt`,
/// `tls.key`, as OLM mounts them) signed by a fresh CA into `dir`; returns the
/// CA certificate (PEM) to put in `caBundle`.
pub fn write_webhook_cert(dir: &Path) -> Result<String> {
    let ca = WebhookCa::generate()?;
    let (cert, key) = ca.issue()?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("tls.crt"), cert)?;
    std::fs::write(dir.join("tls.key"), key)?;
    Ok(ca.pem())
}

/// Replaces the files of `dir` the way the kubelet updates a mounted Secret
/// (its `AtomicWriter`): the new files go into a fresh `..<stamp>` directory,
/// the `..data` symlink is swapped to it with one `rename`, and each visible
/// name is a symlink through `..data` — so a reader sees the old set or the
/// new set, never a mix. Plain files of the same names are replaced by the
/// symlinks on the first call.
pub fn swap_secret_volume(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    use std::os::unix::fs::symlink;
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let payload = dir.join(&stamp);
    std::fs::create_dir_all(&payload)?;
    for (name, bytes) in files {
        std::fs::write(payload.join(name), bytes)?;
    }
    let previous = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        let tmp = dir.join(format!("{name}.tmp-link"));
        let _ = std::fs::remove_file(&tmp);
        symlink(Path::new("..data").join(name), &tmp)?;
        std::fs::rename(&tmp, &link)?;
    }
    if let Some(old) = previous {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

/// Name of the ValidatingWebhookConfiguration the tests register.
pub const VALIDATING_WEBHOOK: &str = locust_operator::webhook::VALIDATING_WEBHOOK_NAME;

/// `crd` with its conversion webhook at `https://127.0.0.1:<port>/convert`
/// trusted through `ca` (the URL form, as envtest registers webhooks; in the
/// bundle OLM fills in the Service and CA).
pub fn with_local_conversion_webhook(
    mut crd: CustomResourceDefinition,
    port: u16,
    ca: &str,
) -> CustomResourceDefinition {
    locust_operator::crd::set_webhook_conversion(
        &mut crd,
        locust_operator::crd::ConversionTarget::Url(format!("https://127.0.0.1:{port}/convert")),
        Some(ca.as_bytes().to_vec()),
    );
    crd
}

/// Registers the operator's validating webhook (v2 CREATE/UPDATE, as in the
/// CSV) at `https://127.0.0.1:<port>` trusted through `ca` (empty: no
/// `caBundle`, for the operator to fill in).
pub async fn install_local_validating_webhook(client: &Client, port: u16, ca: &str) -> Result<()> {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{
        RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
    };
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(VALIDATING_WEBHOOK.into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: VALIDATING_WEBHOOK.into(),
            admission_review_versions: vec!["v1".into()],
            client_config: WebhookClientConfig {
                url: Some(format!(
                    "https://127.0.0.1:{port}/validate-locust-io-v2-locusttest"
                )),
                ca_bundle: (!ca.is_empty()).then(|| ByteString(ca.as_bytes().to_vec())),
                ..WebhookClientConfig::default()
            },
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            rules: Some(
                manifests_gen::csv::validating_rules()
                    .into_iter()
                    .map(|rule| {
                        let mut rule: RuleWithOperations = serde_json::from_value(rule)?;
                        rule.scope = Some("Namespaced".into());
                        Ok(rule)
                    })
                    .collect::<Result<_>>()?,
            ),
            ..ValidatingWebhook::default()
        }]),
    };
    apply(&api, &vwc).await?;
    Ok(())
}

/// The operator serving its webhooks on `https://127.0.0.1:<port>` (not yet
/// registered with the apiserver), as envtest-style tests run it.
pub struct LocalWebhookOperator {
    /// The process (`--leader-elect=false`).
    pub process: OperatorProcess,
    /// The webhook port on 127.0.0.1.
    pub port: u16,
    /// CA certificate (PEM) of the serving certificate, for `caBundle`.
    pub ca: String,
}

/// [`swap_secret_volume`] with a serving certificate and its key (`tls.crt`,
/// `tls.key`, PEM).
pub fn swap_serving_cert(dir: &Path, cert: &str, key: &str) -> Result<()> {
    swap_secret_volume(
        dir,
        &[("tls.crt", cert.as_bytes()), ("tls.key", key.as_bytes())],
    )
}

/// Installs the operator's RBAC and starts it under its ServiceAccount with a
/// fresh serving certificate for 127.0.0.1 (log tag `tag`). Register the
/// webhooks with [`with_local_conversion_webhook`] and
/// [`install_local_validating_webhook`].
pub async fn start_local_webhook_operator(
    cluster: &Cluster,
    tag: &str,
) -> Result<LocalWebhookOperator> {
    install_rbac(&cluster.admin_client()).await?;
    let kubeconfig = operator_kubeconfig(cluster, SERVICE_ACCOUNT).await?;
    let cert_dir = cluster.dir().join(format!("webhook-certs-{tag}"));
    let ca = write_webhook_cert(&cert_dir)?;
    let port = free_port()?;
    let process = OperatorProcess::spawn(
        cluster,
        &kubeconfig,
        tag,
        &[
            "--leader-elect=false".into(),
            "--webhook-bind-address=127.0.0.1".into(),
            format!("--webhook-port={port}"),
            format!("--webhook-cert-dir={}", cert_dir.display()),
        ],
    )?;
    Ok(LocalWebhookOperator { process, port, ca })
}
