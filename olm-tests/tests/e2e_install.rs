//! Installing the operator without OLM, the two ways users do: the Helm
//! chart (`charts/locust-k8s-operator`) and the plain manifest
//! (`install.yaml`, with `kubectl apply --server-side`), each on a local
//! cluster of its own with the real kubelet node.
//! The operator Deployment's two pods run the operator image on the node,
//! issue their own webhook certificate (`--webhook-cert-mode=self-managed`:
//! the Secret `locust-k8s-operator-webhook-cert`, then the caBundle of the
//! CRD's conversion webhook and of the ValidatingWebhookConfiguration), and
//! serve conversion and admission through the Service
//! `locust-k8s-operator-webhook`; a LocustTest runs real Locust (a master and
//! one worker in the Locust image built here) against an HTTP target pod and
//! ends `Succeeded`.
//!
//! `helm_install_upgrade_uninstall`:
//! 1. `helm install locust-k8s-operator charts/locust-k8s-operator -n
//!    locust-operator --create-namespace --wait` with the chart's default
//!    values (no `--set`: the default image
//!    `ghcr.io/abdelrhmanhamouda/locust-k8s-operator:<appVersion>` is the
//!    operator image built here, already in the node's containerd);
//! 2. the operator runs that image; the Secret, the CRD's conversion
//!    caBundle and the webhook configuration's caBundle hold the same CA;
//! 3. a v2 LocustTest in namespace `load` runs to `Succeeded` (the target
//!    counted its requests, `status.result` has them); a v1 LocustTest is
//!    admitted and reads back as v2 (conversion in the default install), and
//!    the operator reconciles it;
//! 4. `helm upgrade` to the chart of the hypothetical next patch release
//!    (rendered by `manifests-gen` into a temporary directory; its image, the
//!    same build, pushed under that tag to the local registry the node
//!    mirrors `ghcr.io` to): the operator runs the new image, the new pods
//!    adopt the certificate (same CA everywhere), both LocustTests read in v1
//!    and in v2, and the v1 test, still under way when the old pods went
//!    away (v1 tests get the default 60 s autoquit), ends `Succeeded` under
//!    the new operator;
//! 5. `helm uninstall --wait`: every object of the release (as `helm get
//!    manifest` listed it) is gone — Deployment and its pods, Services,
//!    ServiceAccount, Role/RoleBinding, ClusterRoles/ClusterRoleBinding,
//!    PodDisruptionBudget, ValidatingWebhookConfiguration — except the CRD
//!    (`helm.sh/resource-policy: keep`, value `crds.keep`), so every
//!    LocustTest remains.
//!
//! `kubectl_apply_install_yaml`, the commands of `docs/install.md` ("kubectl:
//! `install.yaml`") with the pinned kubectl:
//! 1. `kubectl apply --server-side -f install.yaml` (the repository's file);
//!    the operator runs the image built here and wires its certificate as
//!    above; a v2 LocustTest runs to `Succeeded`;
//! 2. `kubectl apply --server-side -f` the `install.yaml` of the hypothetical
//!    next patch release (rendered by `manifests-gen` into a temporary file,
//!    its image pushed to the local registry as for `helm upgrade`): the
//!    operator runs the new image with the same CA, and the LocustTest is
//!    kept and reads in v1 and v2;
//! 3. the uninstall commands of that section of `docs/install.md`, read from
//!    the document and run as written (two label-selected `kubectl delete`s
//!    and the deletion of the operator's certificate Secret): every object of
//!    `install.yaml` but the CRD and the Namespace is gone, the operator pods
//!    and the Secret too; the Namespace, the CRD and the LocustTest remain.
//!
//! What stays after uninstalling, by design: the CRD and the LocustTests
//! (readable as v2, the stored version; reading them as v1 needs the
//! conversion webhook, so only once an operator is installed again); after
//! `helm uninstall` also what the release never owned — the namespace
//! (`--create-namespace` does not delete it), the operator's certificate
//! Secret and its leader-election Lease (both created by the operator; the
//! test prints whether they are left). The documented `install.yaml` removal
//! keeps the namespace (and with it the Lease; the test prints whether it is
//! left) and deletes the Secret.
//!
//! helm and kubectl (both pinned in `olm-tests/tools/build.sh`) run in the
//! cluster's network namespace (where the apiserver listens) with the admin
//! kubeconfig and their cache, config and data directories in a temporary
//! directory, each command bounded in time.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::discovery::{Scope, pinned_kind};
use kube::{Client, ResourceExt};
use locust_operator::api::{CRD_NAME, LocustTest, Phase, SCHEDULE_CRD_NAME, v1};
use locust_operator::webhook::certs::CA_CERT_KEY;
use manifests_gen::chart::{CHART_DIR, CHART_NAME, INSTALL_NAMESPACE, INSTALL_PATH};
use olm_tests::cluster::ClusterNet;
use olm_tests::fixture::{self, LOCUSTFILE_PATH, TargetStats};
use olm_tests::images::{self, Image, Images, TARGET_PORT};
use olm_tests::olm::{self, OPERATOR_POD_SELECTOR};
use olm_tests::registry::{Registry, run_in};
use olm_tests::{Cluster, ClusterOptions, Tools, operator, wait_for};
use serde_json::{Value, json};

/// The release name (`install.yaml` stands for the same release).
const RELEASE: &str = CHART_NAME;
/// The operator's namespace (the chart's suggested one, `install.yaml`'s).
const NS: &str = INSTALL_NAMESPACE;
/// The chart's full name for [`RELEASE`]: the release name contains the
/// chart name, so every object is named after the release.
const FULLNAME: &str = RELEASE;
/// The webhook Service the CRD converts through and the webhooks call.
const WEBHOOK_SERVICE: &str = "locust-k8s-operator-webhook";
/// The Secret the operator keeps its CA and serving certificate in.
const CERT_SECRET: &str = "locust-k8s-operator-webhook-cert";
/// The operator's leader-election Lease (its default `--leader-election-id`).
const LEASE: &str = "locust-k8s-operator.locust.io";
/// Where the LocustTests and the target run.
const TESTS_NS: &str = "load";
/// The locustfile ConfigMap.
const FILES: &str = "install-files";
/// Bound on one step (an install, a rollout, a wait for objects).
const STEP: Duration = Duration::from_secs(180);
/// Bound on one LocustTest run, creation to final phase.
const RUN: Duration = Duration::from_secs(180);
/// Bound on one helm command (its own `--timeout` is 5 minutes).
const HELM_RUN: Duration = Duration::from_secs(330);
/// Bound on one kubectl command (an apply of `install.yaml`, a `delete`
/// waiting for its objects to be gone).
const KUBECTL_RUN: Duration = Duration::from_secs(180);
/// The document whose "kubectl: `install.yaml`" section the kubectl test
/// follows, relative to the workspace root.
const INSTALL_DOC: &str = "docs/install.md";
const POLL: Duration = Duration::from_millis(250);

// --- helm ----------------------------------------------------------------

/// The pinned helm (`olm_tests::helm`), run in the cluster's network
/// namespace with the admin kubeconfig.
struct Helm {
    helm: olm_tests::helm::Helm,
    kubeconfig: PathBuf,
    net: ClusterNet,
    logs: PathBuf,
}

impl Helm {
    fn new(tools: &Tools, cluster: &Cluster) -> Result<Self> {
        Ok(Self {
            helm: olm_tests::helm::Helm::at(tools.bin("helm"))?,
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            net: cluster.net(),
            logs: cluster.dir().join("logs/helm"),
        })
    }

    /// Runs `helm ARGS --kubeconfig …` to completion (bounded by
    /// [`HELM_RUN`]); prints and returns its output (stdout and stderr) and
    /// how long it took.
    async fn run(&self, args: &[&str]) -> Result<(String, Duration)> {
        let mut cmd = self.helm.command();
        cmd.args(args).arg("--kubeconfig").arg(&self.kubeconfig);
        run_tool("helm", cmd, &self.net, &self.logs, args, HELM_RUN).await
    }
}

/// Runs `cmd` (the `tool` with `args`) to completion in the cluster's
/// network namespace, bounded by `timeout`; prints and returns its output
/// (stdout and stderr) and how long it took.
async fn run_tool(
    tool: &str,
    cmd: std::process::Command,
    net: &ClusterNet,
    logs: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<(String, Duration)> {
    let (net, logs) = (net.clone(), logs.to_path_buf());
    let shown = format!("{tool} {}", args.join(" "));
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || run_in(&net, cmd, &logs, timeout))
        .await
        .with_context(|| format!("joining the {tool} runner"))?
        .with_context(|| shown.clone())?;
    // The log starts with the spawner's own `==> local-cluster: starting …` line.
    let out = match out.split_once('\n') {
        Some((first, rest)) if first.starts_with("==> ") => rest.to_owned(),
        _ => out,
    };
    let took = started.elapsed();
    eprintln!("{shown} ({:.1} s):\n{}", took.as_secs_f64(), out.trim_end());
    Ok((out, took))
}

/// The chart of release `version` (`manifests-gen`'s chart templates for
/// it), written under `dir`; returns the chart directory.
fn render_chart(version: &semver::Version, dir: &Path) -> Result<PathBuf> {
    let files = manifests_gen::chart::render(version).map_err(|e| anyhow!("{e}"))?;
    let prefix = format!("{CHART_DIR}/");
    let mut written = 0;
    for (path, content) in files.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)
            .with_context(|| format!("writing {}", target.display()))?;
        written += 1;
    }
    ensure!(
        written > 0,
        "manifests-gen rendered no file under {CHART_DIR}"
    );
    Ok(dir.join(CHART_DIR))
}

/// `appVersion` of the chart in `dir`.
fn app_version(dir: &Path) -> Result<String> {
    let path = dir.join("Chart.yaml");
    let chart: Value = olm_tests::yaml::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    chart["appVersion"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no appVersion", path.display()))
}

// --- kubectl ---------------------------------------------------------------

/// The pinned kubectl (`<tools>/bin/kubectl`, built from the same
/// `k8s.io/kubernetes` as the cluster), run in the cluster's network
/// namespace with the admin kubeconfig, its `HOME` and cache in a temporary
/// directory.
struct Kubectl {
    bin: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
    net: ClusterNet,
    logs: PathBuf,
}

impl Kubectl {
    fn new(tools: &Tools, cluster: &Cluster) -> Result<Self> {
        let bin = tools.bin("kubectl");
        ensure!(
            bin.is_file(),
            "{} is missing (rebuild the tools with olm-tests/tools/build.sh)",
            bin.display()
        );
        Ok(Self {
            bin,
            home: tempfile::tempdir().context("creating kubectl's home")?,
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            net: cluster.net(),
            logs: cluster.dir().join("logs/kubectl"),
        })
    }

    /// Runs `kubectl ARGS --kubeconfig … --cache-dir …` to completion
    /// (bounded by [`KUBECTL_RUN`]); prints and returns its output (stdout
    /// and stderr) and how long it took.
    async fn run(&self, args: &[&str]) -> Result<(String, Duration)> {
        let home = self.home.path();
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(home.join("cache"))
            .current_dir(operator::workspace_root())
            .env("HOME", home)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null());
        run_tool("kubectl", cmd, &self.net, &self.logs, args, KUBECTL_RUN).await
    }

    /// `kubectl apply --server-side -f file`, with a FIGURE line: what was
    /// applied (`what`), how many objects and how long it took.
    async fn apply(&self, file: &Path, what: &str) -> Result<()> {
        let file = file.to_string_lossy();
        let (out, took) = self.run(&["apply", "--server-side", "-f", &file]).await?;
        let applied = out
            .lines()
            .filter(|l| l.ends_with(" serverside-applied"))
            .count();
        eprintln!(
            "FIGURE kubectl apply --server-side -f {INSTALL_PATH} {what}: {applied} objects serverside-applied in {:.1} s",
            took.as_secs_f64()
        );
        Ok(())
    }
}

/// The uninstall commands of [`INSTALL_DOC`]'s "kubectl: `install.yaml`"
/// section (the `sh` block after "To uninstall"), each split into its
/// arguments after `kubectl` (continuation lines joined). Only plain words
/// are accepted: the block is run without a shell.
fn documented_uninstall() -> Result<Vec<Vec<String>>> {
    let path = operator::workspace_root().join(INSTALL_DOC);
    let doc =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("kubectl: `install.yaml`"))
        .with_context(|| format!("{INSTALL_DOC} has no section \"kubectl: `install.yaml`\""))?;
    let block = section
        .split_once("To uninstall")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .with_context(|| {
            format!(
                "{INSTALL_DOC}, \"kubectl: `install.yaml`\": no sh block after \"To uninstall\""
            )
        })?;
    let mut commands = Vec::new();
    for line in block.replace("\\\n", " ").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        ensure!(
            words[0] == "kubectl",
            "{INSTALL_DOC}: an uninstall command that is not kubectl: {line}"
        );
        ensure!(
            words
                .iter()
                .all(|w| !w.contains(['\'', '"', '$', '`', '|', ';', '&', '<', '>', '*', '#'])),
            "{INSTALL_DOC}: an uninstall command that needs a shell: {line}"
        );
        commands.push(words[1..].iter().map(|w| (*w).to_owned()).collect());
    }
    ensure!(
        !commands.is_empty(),
        "{INSTALL_DOC}: no uninstall command in \"kubectl: `install.yaml`\""
    );
    Ok(commands)
}

// --- objects of a manifest -----------------------------------------------

/// One object of a manifest with the API to reach it (kind resolved by
/// discovery).
struct Object {
    api: Api<DynamicObject>,
    kind: String,
    name: String,
    what: String,
}

/// The objects of a multi-document YAML manifest, in order.
async fn objects(client: &Client, manifest: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for doc in olm_tests::yaml::documents(manifest)? {
        if doc.is_null() {
            continue;
        }
        let object: DynamicObject = serde_json::from_value(doc)?;
        let types = object
            .types
            .as_ref()
            .with_context(|| format!("{} has no apiVersion/kind", object.name_any()))?;
        let gvk = GroupVersionKind::try_from(types)?;
        let (ar, caps) = pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {gvk:?}"))?;
        let name = object.name_any();
        let (api, what) = match caps.scope {
            Scope::Namespaced => {
                let ns = object
                    .namespace()
                    .with_context(|| format!("{} {name} has no namespace", gvk.kind))?;
                (
                    Api::namespaced_with(client.clone(), &ns, &ar),
                    format!("{} {ns}/{name}", gvk.kind),
                )
            }
            Scope::Cluster => (
                Api::all_with(client.clone(), &ar),
                format!("{} {name}", gvk.kind),
            ),
        };
        out.push(Object {
            api,
            kind: gvk.kind,
            name,
            what,
        });
    }
    Ok(out)
}

fn is_crd(o: &Object) -> bool {
    o.kind == "CustomResourceDefinition"
}

/// Whether `objects` hold exactly the operator's two CRDs.
fn has_both_crds(objects: &[Object]) -> bool {
    let mut crds: Vec<&str> = objects
        .iter()
        .filter(|o| is_crd(o))
        .map(|o| o.name.as_str())
        .collect();
    crds.sort_unstable();
    crds == [SCHEDULE_CRD_NAME, CRD_NAME]
}

/// Waits (bounded) until none of `objects` exists any more.
async fn wait_gone(objects: &[&Object], timeout: Duration) -> Result<()> {
    let left = wait_for(timeout, POLL, || async {
        let mut left = Vec::new();
        for o in objects {
            if o.api.get_opt(&o.name).await?.is_some() {
                left.push(o.what.clone());
            }
        }
        Ok(left.is_empty().then_some(()))
    })
    .await;
    if left.is_err() {
        let mut still = Vec::new();
        for o in objects {
            if let Ok(Some(_)) = o.api.get_opt(&o.name).await {
                still.push(o.what.clone());
            }
        }
        return left.with_context(|| format!("still there: {}", still.join(", ")));
    }
    Ok(())
}

/// Waits (bounded) until no operator pod is left in [`NS`].
async fn wait_no_operator_pods(client: &Client) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(STEP, POLL, || {
        let pods = pods.clone();
        async move {
            let lp = ListParams::default().labels(OPERATOR_POD_SELECTOR);
            Ok(pods.list(&lp).await?.items.is_empty().then_some(()))
        }
    })
    .await
    .context("waiting for the operator pods to be gone")
}

/// The CRDs still exist, and both `names` are LocustTests of [`TESTS_NS`]
/// (read as v2, the stored version: no conversion webhook needed).
async fn ensure_kept(client: &Client, names: &[&str]) -> Result<()> {
    for crd in [CRD_NAME, SCHEDULE_CRD_NAME] {
        let kept = Api::<CustomResourceDefinition>::all(client.clone())
            .get_opt(crd)
            .await?;
        ensure!(kept.is_some(), "the CRD {crd} was deleted");
    }
    let listed = tests_v2(client).list(&ListParams::default()).await?.items;
    for name in names {
        ensure!(
            listed.iter().any(|t| t.name_any() == *name),
            "LocustTest {TESTS_NS}/{name} is gone"
        );
    }
    Ok(())
}

// --- the operator ----------------------------------------------------------

/// Waits until the operator Deployment runs `image` on the node.
async fn wait_operator(client: &Client, image: &str) -> Result<Vec<Pod>> {
    olm::wait_deployment_running_in(client, NS, image, STEP).await
}

/// Whether object `name` of kind `K` is in the operator's namespace [`NS`].
async fn present<K>(client: &Client, name: &str) -> Result<bool>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    Ok(api.get_opt(name).await?.is_some())
}

/// After an install (`what`, begun at `since`): the operator runs this
/// build's image and its certificate is wired; returns the webhook CA.
async fn wait_installed(client: &Client, what: &str, since: Instant) -> Result<Vec<u8>> {
    let image = images::operator_image();
    wait_operator(client, &image).await?;
    let ca = wait_certificate(client).await?;
    eprintln!(
        "FIGURE {what}: operator running {image} with its certificate wired {:.1} s after it began",
        since.elapsed().as_secs_f64(),
    );
    Ok(ca)
}

/// After an upgrade (`what`, which returned just now): the operator runs
/// `next_image`, its new pods kept the webhook CA `ca` (they adopted the
/// Secret instead of issuing another), and the LocustTests `v2_name` and
/// `v1_name` read in both versions, through the new pods' conversion webhook.
async fn check_upgraded(
    client: &Client,
    what: &str,
    next_image: &str,
    ca: &[u8],
    (v2_name, v1_name): (&str, &str),
) -> Result<()> {
    let waited = Instant::now();
    wait_operator(client, next_image).await?;
    let ca_after = wait_certificate(client).await?;
    ensure!(
        ca_after == ca,
        "the upgrade changed the webhook CA: the new pods did not adopt the Secret"
    );
    read_both_versions(client, v2_name, v1_name).await?;
    eprintln!(
        "FIGURE {what}: operator running {next_image} with the same CA, both tests read as v1 and v2 {:.1} s after it returned",
        waited.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until the operator's certificate is in place: the Secret holds a
/// CA and a serving pair, and the CRD's conversion webhook (through
/// [`WEBHOOK_SERVICE`] in [`NS`]) and every webhook of the
/// ValidatingWebhookConfiguration carry that CA. Returns the CA (PEM).
async fn wait_certificate(client: &Client) -> Result<Vec<u8>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let last = std::sync::Mutex::new(String::new());
    let waited = wait_for(STEP, POLL, || {
        let (secrets, crds, vwcs, last) = (secrets.clone(), crds.clone(), vwcs.clone(), &last);
        async move {
            let note = |s: String| {
                *last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
                Ok(None)
            };
            let Some(secret) = secrets.get_opt(CERT_SECRET).await? else {
                return note(format!("no Secret {NS}/{CERT_SECRET}"));
            };
            let data = secret.data.unwrap_or_default();
            let field = |k: &str| data.get(k).map(|b| b.0.clone()).unwrap_or_default();
            let ca = field(CA_CERT_KEY);
            if ca.is_empty() || field("tls.crt").is_empty() || field("tls.key").is_empty() {
                return note(format!(
                    "Secret {CERT_SECRET} holds {:?}",
                    data.keys().collect::<Vec<_>>()
                ));
            }
            let crd = crds.get(CRD_NAME).await?;
            let cc = olm::conversion_client_config(&crd);
            let service = cc.and_then(|c| c.service.as_ref());
            if !service.is_some_and(|s| s.name == WEBHOOK_SERVICE && s.namespace == NS) {
                return note(format!("the CRD converts through {service:?}"));
            }
            let crd_ca = cc.and_then(|c| c.ca_bundle.as_ref()).map(|b| b.0.clone());
            if crd_ca.as_deref() != Some(ca.as_slice()) {
                return note(format!(
                    "the CRD's caBundle: {} bytes, not the Secret's CA",
                    crd_ca.map_or(0, |b| b.len())
                ));
            }
            let vwc = vwcs.get(FULLNAME).await?;
            let hooks = vwc.webhooks.unwrap_or_default();
            if hooks.is_empty() {
                return note(format!(
                    "the ValidatingWebhookConfiguration {FULLNAME} is empty"
                ));
            }
            for h in &hooks {
                let hook_ca = h.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice());
                let to = h.client_config.service.as_ref();
                if hook_ca != Some(ca.as_slice())
                    || !to.is_some_and(|s| s.name == WEBHOOK_SERVICE && s.namespace == NS)
                {
                    return note(format!(
                        "webhook {}: caBundle {} bytes, service {to:?}",
                        h.name,
                        hook_ca.map_or(0, <[u8]>::len)
                    ));
                }
            }
            Ok(Some(ca))
        }
    })
    .await;
    let last = last
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    waited.with_context(|| format!("waiting for the operator's webhook certificate: {last}"))
}

// --- the LocustTests -------------------------------------------------------

fn tests_v2(client: &Client) -> Api<LocustTest> {
    Api::namespaced(client.clone(), TESTS_NS)
}

fn tests_v1(client: &Client) -> Api<v1::LocustTest> {
    Api::namespaced(client.clone(), TESTS_NS)
}

/// The HTTP target pod behind Service `target` in [`TESTS_NS`], once it
/// is Ready and the Service answers through kube-proxy; returns the pod's IP
/// (its `/stats` are read there).
async fn start_target(cluster: &Cluster, images: &Images) -> Result<IpAddr> {
    Ok(fixture::start_target(cluster, images, TESTS_NS, None)
        .await?
        .pod_ip)
}

/// The target's counters.
async fn target_stats(cluster: &Cluster, pod_ip: IpAddr) -> Result<TargetStats> {
    let (code, body) = cluster
        .http_get(SocketAddr::new(pod_ip, TARGET_PORT), "/stats")
        .await?;
    ensure!(code == 200, "target /stats answered {code}: {body}");
    serde_json::from_str(&body).with_context(|| format!("parsing target /stats: {body}"))
}

/// Waits (bounded) until test `name` is in a final phase.
async fn wait_terminal(client: &Client, name: &str) -> Result<LocustTest> {
    let tests = tests_v2(client);
    wait_for(RUN, POLL, || {
        let tests = tests.clone();
        async move {
            let t = tests.get(name).await?;
            Ok(fixture::phase(&t)
                .is_some_and(Phase::is_terminal)
                .then_some(t))
        }
    })
    .await
    .with_context(|| format!("{TESTS_NS}/{name}: waiting for a final phase"))
}

/// The namespace, the target and the locustfile; then v2 LocustTest `name`
/// (1 worker, 4 users for 10 s, autoquit 20 s: twice the operator's default
/// stats interval, so its final numbers are read) created once the webhook
/// admits it, run to `Succeeded` with real Locust. Returns how long the run
/// took from creation.
async fn run_v2_test(cluster: &Cluster, images: &Images, name: &str) -> Result<Duration> {
    let client = cluster.admin_client();
    operator::create_namespace(&client, TESTS_NS, &[]).await?;
    let target = start_target(cluster, images).await?;
    let files: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": FILES, "namespace": TESTS_NS},
        "data": {"locustfile.py": fixture::locustfile("", "\"/\"")},
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), TESTS_NS)
        .create(&PostParams::default(), &files)
        .await
        .context("creating the locustfile ConfigMap")?;
    let spec = fixture::locust_spec(
        FILES,
        "10s",
        json!({"worker": {"replicas": 1}, "master": {"autoquit": {"timeout": 20}}}),
    );
    let test: LocustTest = serde_json::from_value(json!({
        "apiVersion": "locust.io/v2", "kind": "LocustTest",
        "metadata": {"name": name, "namespace": TESTS_NS},
        "spec": spec,
    }))?;
    let started = Instant::now();
    olm::create_when_admitted(&tests_v2(&client), &test, NS, STEP).await?;
    let done = wait_terminal(&client, name).await?;
    let took = started.elapsed();
    let status = done.status.clone().unwrap_or_default();
    ensure!(
        status.phase == Some(Phase::Succeeded),
        "{TESTS_NS}/{name} ended {:?}: {:?}",
        status.phase,
        status.conditions
    );
    let result = status.result.unwrap_or_default();
    let stats = target_stats(cluster, target).await?;
    ensure!(
        result.total_requests.is_some_and(|n| n > 0) && stats.requests_to("/") > 0,
        "no load reached the target: status.result {result:?}, the target counted {}",
        stats.requests_to("/")
    );
    eprintln!(
        "{TESTS_NS}/{name} Succeeded: status.result {} requests ({} failed, {:.1} RPS), the target counted {}",
        result.total_requests.unwrap_or_default(),
        result.failed_requests.unwrap_or_default(),
        result.requests_per_second.unwrap_or_default(),
        stats.requests_to("/")
    );
    Ok(took)
}

const V1_MASTER: &str = "locust -f /lotest/src/locustfile.py --host http://target --users 2 --spawn-rate 2 --run-time 10s";

/// Creates v1 LocustTest `name` (1 worker against the target), checks it
/// reads back as v2 with its fields mapped, and waits until the operator
/// gave it a phase.
async fn create_v1_test(client: &Client, name: &str) -> Result<()> {
    let test: v1::LocustTest = serde_json::from_value(json!({
        "apiVersion": "locust.io/v1", "kind": "LocustTest",
        "metadata": {"name": name, "namespace": TESTS_NS},
        "spec": {
            "image": images::locust_image(),
            "masterCommandSeed": V1_MASTER,
            "workerCommandSeed": format!("locust -f {LOCUSTFILE_PATH}"),
            "workerReplicas": 1,
            "configMap": FILES,
        },
    }))?;
    olm::create_when_admitted(&tests_v1(client), &test, NS, STEP).await?;
    let as_v2 = tests_v2(client).get(name).await?;
    ensure!(
        as_v2.spec.master.command == V1_MASTER
            && as_v2.spec.worker.replicas == 1
            && as_v2
                .spec
                .test_files
                .as_ref()
                .and_then(|f| f.config_map_ref.as_deref())
                == Some(FILES),
        "v1 test {name} read as v2: {:?}",
        as_v2.spec
    );
    let tests = tests_v2(client);
    wait_for(Duration::from_secs(60), POLL, || {
        let tests = tests.clone();
        async move { Ok(fixture::phase(&tests.get(name).await?)) }
    })
    .await
    .with_context(|| format!("{TESTS_NS}/{name}: waiting for the operator to give it a phase"))?;
    Ok(())
}

/// Both tests read in v1 and in v2 with the same fields (retried, bounded:
/// the webhook Service may be between pods).
async fn read_both_versions(client: &Client, v2_name: &str, v1_name: &str) -> Result<()> {
    wait_for(STEP, Duration::from_secs(1), || async {
        let lp = ListParams::default();
        let as_v1 = tests_v1(client)
            .list(&lp)
            .await
            .context("listing LocustTests as v1 (through the conversion webhook)")?
            .items;
        let as_v2 = tests_v2(client).list(&lp).await?.items;
        for name in [v2_name, v1_name] {
            let one = as_v1
                .iter()
                .find(|t| t.name_any() == name)
                .with_context(|| format!("{name} missing as v1"))?;
            let two = as_v2
                .iter()
                .find(|t| t.name_any() == name)
                .with_context(|| format!("{name} missing as v2"))?;
            ensure!(
                one.spec.master_command_seed == two.spec.master.command
                    && one.spec.worker_replicas == two.spec.worker.replicas
                    && one.spec.image == two.spec.image,
                "{name}: v1 {:?} differs from v2 {:?}",
                one.spec,
                two.spec
            );
        }
        let done = as_v2
            .iter()
            .find(|t| t.name_any() == v2_name)
            .and_then(fixture::phase);
        ensure!(
            done == Some(Phase::Succeeded),
            "{v2_name} is {done:?} after the upgrade"
        );
        Ok(Some(()))
    })
    .await
    .context("reading both LocustTests as v1 and v2")
}

// --- failures ----------------------------------------------------------------

/// The operator pods' logs, and the pods and Events of the operator's and
/// the tests' namespaces.
async fn diagnostics(client: &Client) -> String {
    let mut out = format!(
        "--- operator pods ---\n{}",
        olm::operator_logs_in(client, NS, 40).await
    );
    for ns in [NS, TESTS_NS] {
        out.push_str(&fixture::namespace_diagnostics(client, ns, 15, 30).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_upgrade_uninstall() -> Result<()> {
    on_real_node("helm_install_upgrade_uninstall", "e2e-helm", helm_scenario).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_install_yaml() -> Result<()> {
    on_real_node(
        "kubectl_apply_install_yaml",
        "e2e-install-yaml",
        install_yaml_scenario,
    )
    .await
}

/// Runs `scenario` for `test` on a cluster `name` with the real node
/// (skipped without the tools and images); on failure, the cluster is kept
/// and [`diagnostics`] are added to the error.
async fn on_real_node(
    test: &str,
    name: &str,
    scenario: impl AsyncFnOnce(&Cluster, &Tools, &Images) -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let Some((tools, images)) = images::tools_and_images_or_skip(test) else {
        return Ok(());
    };
    let cluster = Cluster::start(ClusterOptions::real_node_from(tools.clone(), name)).await?;
    eprintln!(
        "FIGURE cluster with the real node started in {:.1} s",
        cluster.startup_duration().as_secs_f64()
    );
    let result = scenario(&cluster, &tools, &images).await;
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(e) => {
            cluster.mark_failed();
            let diagnostics = diagnostics(&cluster.admin_client()).await;
            Err(anyhow!("{e:#}\n{diagnostics}"))
        }
    };
    eprintln!(
        "TIME {test}: {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        if outcome.is_ok() { "passed" } else { "FAILED" }
    );
    outcome
}

/// The release the checked-in chart describes, and the next patch release.
fn versions() -> Result<(semver::Version, semver::Version)> {
    let root = operator::workspace_root();
    let (_, current) = manifests_gen::resolve_releases(&manifests_gen::Options::new(&root))
        .map_err(|e| anyhow!("{e}"))?;
    let chart = app_version(&root.join(CHART_DIR))?;
    ensure!(
        chart == current.to_string(),
        "{CHART_DIR} is for {chart}, the highest release is {current}: run `cargo run -p manifests-gen -- generate`"
    );
    ensure!(
        images::operator_image() == olm::operator_image(&chart),
        "the chart's default image {} is not the image built here {}",
        olm::operator_image(&chart),
        images::operator_image()
    );
    let next = semver::Version::new(current.major, current.minor, current.patch + 1);
    Ok((current, next))
}

/// The operator image of release `next`: the image built here, pushed under
/// that release's tag to a local registry the node mirrors `ghcr.io` to.
/// Returns the registry (it serves while it lives) and the image.
async fn push_next_image(
    cluster: &Cluster,
    tools: &Tools,
    images: &Images,
    next: &semver::Version,
) -> Result<(Registry, String)> {
    let registry = Registry::start(cluster, tools).await?;
    let next_image = olm::operator_image(&next.to_string());
    registry.push_archive(&images.archive(Image::Operator), &next_image)?;
    Ok((registry, next_image))
}

// --- the tests ---------------------------------------------------------------

async fn helm_scenario(cluster: &Cluster, tools: &Tools, images: &Images) -> Result<()> {
    let client = cluster.admin_client();
    let (current, next) = versions()?;
    let root = operator::workspace_root();
    let chart = root.join(CHART_DIR);
    let chart_arg = chart.to_string_lossy().into_owned();

    let helm = Helm::new(tools, cluster)?;
    let started = Instant::now();
    let (_, took) = helm
        .run(&[
            "install",
            RELEASE,
            &chart_arg,
            "-n",
            NS,
            "--create-namespace",
            "--wait",
            "--timeout",
            "5m",
        ])
        .await?;
    eprintln!("FIGURE helm install took {:.1} s", took.as_secs_f64());
    let ca = wait_installed(&client, "helm install", started).await?;

    let (v2_name, v1_name) = ("helm-v2", "helm-v1");
    let took = run_v2_test(cluster, images, v2_name).await?;
    eprintln!(
        "FIGURE helm install: LocustTest created to Succeeded took {:.1} s",
        took.as_secs_f64()
    );
    let v1_created = Instant::now();
    create_v1_test(&client, v1_name).await?;

    // The next release: the same build pushed as its image, its chart
    // rendered by manifests-gen.
    let (registry, next_image) = push_next_image(cluster, tools, images, &next).await?;
    let next_dir = tempfile::tempdir()?;
    let next_chart = render_chart(&next, next_dir.path())?;
    ensure!(app_version(&next_chart)? == next.to_string());
    let next_arg = next_chart.to_string_lossy().into_owned();
    let before = fixture::phase(&tests_v2(&client).get(v1_name).await?)
        .map_or_else(|| "no phase".to_owned(), |p| format!("{p:?}"));
    let (_, took) = helm
        .run(&[
            "upgrade",
            RELEASE,
            &next_arg,
            "-n",
            NS,
            "--wait",
            "--timeout",
            "5m",
        ])
        .await?;
    eprintln!(
        "FIGURE helm upgrade {current} -> {next} took {:.1} s",
        took.as_secs_f64()
    );
    check_upgraded(
        &client,
        "helm upgrade",
        &next_image,
        &ca,
        (v2_name, v1_name),
    )
    .await?;
    // The v1 test was under way when the old operator went away (autoquit
    // 60 s, the v1 default); the new one finishes it.
    let v1_done = wait_terminal(&client, v1_name).await?;
    let status = v1_done.status.unwrap_or_default();
    ensure!(
        status.phase == Some(Phase::Succeeded),
        "the v1 test, {before} at the upgrade, ended {:?}: {:?}",
        status.phase,
        status.conditions
    );
    eprintln!(
        "FIGURE helm upgrade: the v1 test ({before} when the upgrade began) Succeeded under the new operator {:.1} s after its creation, with {} requests",
        v1_created.elapsed().as_secs_f64(),
        status
            .result
            .and_then(|r| r.total_requests)
            .unwrap_or_default()
    );

    // Uninstall: everything of the release but the CRD goes.
    let (manifest, _) = helm.run(&["get", "manifest", RELEASE, "-n", NS]).await?;
    let release = objects(&client, &manifest).await?;
    ensure!(
        has_both_crds(&release),
        "the release lacks a CRD: {}",
        release
            .iter()
            .map(|o| o.what.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for kind in [
        "Deployment",
        "Service",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
    ] {
        ensure!(
            release.iter().any(|o| o.kind == kind),
            "the release has no {kind}"
        );
    }
    let (_, took) = helm
        .run(&["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m"])
        .await?;
    eprintln!("FIGURE helm uninstall took {:.1} s", took.as_secs_f64());
    let waited = Instant::now();
    let removed: Vec<&Object> = release.iter().filter(|o| !is_crd(o)).collect();
    wait_gone(&removed, STEP).await?;
    wait_no_operator_pods(&client).await?;
    ensure_kept(&client, &[v2_name, v1_name]).await?;
    let kept = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD_NAME)
        .await?;
    ensure!(
        kept.annotations()
            .get("helm.sh/resource-policy")
            .map(String::as_str)
            == Some("keep"),
        "the kept CRD has annotations {:?}",
        kept.annotations()
    );
    let left = |there: bool| if there { "left" } else { "gone" };
    let secret = present::<Secret>(&client, CERT_SECRET).await?;
    let lease = present::<Lease>(&client, LEASE).await?;
    eprintln!(
        "FIGURE helm uninstall: {} objects of the release gone, the operator pods too, {:.1} s after helm returned; kept: the CRD, 2 LocustTests; not the release's: Secret {CERT_SECRET} {}, Lease {LEASE} {}",
        removed.len(),
        waited.elapsed().as_secs_f64(),
        left(secret),
        left(lease),
    );
    drop(registry);
    Ok(())
}

async fn install_yaml_scenario(cluster: &Cluster, tools: &Tools, images: &Images) -> Result<()> {
    let client = cluster.admin_client();
    let (current, next) = versions()?;
    let kubectl = Kubectl::new(tools, cluster)?;

    // Install.
    let path = operator::workspace_root().join(INSTALL_PATH);
    let started = Instant::now();
    kubectl.apply(&path, &format!("({current})")).await?;
    let ca = wait_installed(&client, INSTALL_PATH, started).await?;
    let name = "plain-v2";
    let took = run_v2_test(cluster, images, name).await?;
    eprintln!(
        "FIGURE {INSTALL_PATH}: LocustTest created to Succeeded took {:.1} s",
        took.as_secs_f64()
    );

    // Upgrade: the next release's install.yaml, applied the same way.
    let (registry, next_image) = push_next_image(cluster, tools, images, &next).await?;
    let rendered = manifests_gen::chart::render(&next).map_err(|e| anyhow!("{e}"))?;
    let next_text = rendered
        .get(INSTALL_PATH)
        .with_context(|| format!("manifests-gen rendered no {INSTALL_PATH} for {next}"))?;
    ensure!(
        next_text.contains(&format!("image: {next_image}")),
        "the {INSTALL_PATH} of {next} does not run {next_image}"
    );
    let next_file = tempfile::Builder::new()
        .prefix("install-")
        .suffix(".yaml")
        .tempfile()?;
    std::fs::write(next_file.path(), next_text)
        .with_context(|| format!("writing {}", next_file.path().display()))?;
    kubectl
        .apply(next_file.path(), &format!("{current} -> {next}"))
        .await?;
    // The one test, Succeeded before, stands for both versions.
    let what = format!("{INSTALL_PATH} upgrade");
    check_upgraded(&client, &what, &next_image, &ca, (name, name)).await?;

    // Uninstall with the documented commands: every object but the CRD and
    // the Namespace goes, and the operator's Secret; the tests stay.
    let manifest = objects(&client, next_text).await?;
    ensure!(
        manifest
            .first()
            .is_some_and(|o| o.kind == "Namespace" && o.name == NS),
        "the {INSTALL_PATH} of {next} does not start with the Namespace {NS}"
    );
    ensure!(
        has_both_crds(&manifest),
        "the {INSTALL_PATH} of {next} lacks a CRD"
    );
    let commands = documented_uninstall()?;
    let started = Instant::now();
    for command in &commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        kubectl.run(&args).await?;
    }
    let ran = started.elapsed();
    let removed: Vec<&Object> = manifest
        .iter()
        .filter(|o| !is_crd(o) && o.kind != "Namespace")
        .collect();
    wait_gone(&removed, STEP).await?;
    wait_no_operator_pods(&client).await?;
    ensure!(
        !present::<Secret>(&client, CERT_SECRET).await?,
        "the Secret {NS}/{CERT_SECRET} is still there"
    );
    let namespace = Api::<Namespace>::all(client.clone()).get_opt(NS).await?;
    ensure!(
        namespace
            .as_ref()
            .is_some_and(|n| n.metadata.deletion_timestamp.is_none()),
        "the Namespace {NS} did not stay: {:?}",
        namespace.map(|n| n.status)
    );
    ensure_kept(&client, &[name]).await?;
    let lease = present::<Lease>(&client, LEASE).await?;
    eprintln!(
        "FIGURE {INSTALL_PATH} uninstall ({INSTALL_DOC}, {} kubectl commands): {:.1} s to run them, {} objects of {INSTALL_PATH} gone, the operator pods and Secret {CERT_SECRET} too, {:.1} s after the first began; kept: the Namespace {NS}, the CRD, the LocustTest; Lease {LEASE} {}",
        commands.len(),
        ran.as_secs_f64(),
        removed.len(),
        started.elapsed().as_secs_f64(),
        if lease { "left" } else { "gone" }
    );
    drop(registry);
    Ok(())
}
