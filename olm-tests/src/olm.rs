//! Operator Lifecycle Manager on a local [`Cluster`]: OLM's CRDs, the `olm`
//! and `catalog` operators as child processes in the cluster's network
//! namespace, CatalogSources, plus helpers to subscribe, approve, wait and
//! uninstall.
//!
//! Catalogs are served as a cluster serves them ([`Olm::catalog_from_image`]):
//! a CatalogSource with `spec.image`; OLM's registry pod runs the catalog
//! image on the real node, pulled from the local registry
//! ([`crate::registry`]), and each bundle is unpacked by OLM's unpack Job
//! (util and opm images: the local opm image) from its bundle image. The
//! `catalog` operator resolves the registry pod's Service name through the
//! cluster's CoreDNS (it runs with a private `/etc/resolv.conf`). OLM needs a
//! cluster with a real node for that; on kwok nodes no registry pod or unpack
//! Job runs. (`manifests-gen generate --inline-catalog` still writes a catalog
//! whose bundles OLM would install from their inline objects, for a catalog
//! served by address; no test needs it any more.)
//!
//! Every process runs in its own process group, logs to
//! `<cluster dir>/logs/{olm,catalog}.log`, is killed when its owner is
//! dropped, and by the kernel if the test process dies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::{ChildProcess, Cluster, ClusterNet, log_tail};
use crate::operator;
use crate::wait::wait_for;

/// Namespace of OLM itself and of global CatalogSources.
pub const OLM_NAMESPACE: &str = "olm";
/// Namespace of the global OperatorGroup (as in OLM's quickstart).
pub const OPERATORS_NAMESPACE: &str = "operators";
/// The global OperatorGroup (no target namespaces: AllNamespaces).
pub const GLOBAL_OPERATOR_GROUP: &str = "global-operators";
/// The OLM package of the operator.
pub const PACKAGE: &str = "locust-k8s-operator";
/// The operator's Deployment (and ServiceAccount) name in the CSV.
pub const DEPLOYMENT: &str = "locust-k8s-operator";
/// The Service OLM creates for the operator's webhooks.
pub const WEBHOOK_SERVICE: &str = "locust-k8s-operator-service";
/// The Secret with OLM's serving certificate for [`WEBHOOK_SERVICE`].
pub const WEBHOOK_CERT_SECRET: &str = "locust-k8s-operator-service-cert";
/// The LocustTest CRD.
pub const CRD_NAME: &str = "locusttests.locust.io";

const LOG_TAIL_LINES: usize = 30;
const POLL: Duration = Duration::from_millis(250);

/// Name of the CSV of release `version` (e.g. `3.0.0`).
pub fn csv_name(version: &str) -> String {
    format!("{PACKAGE}.v{version}")
}

/// The release version the generated bundle describes (from `releases.rs`
/// via the committed bundle CSV's `spec.version`).
pub fn current_version() -> Result<String> {
    let path = operator::workspace_root()
        .join("bundle/manifests/locust-k8s-operator.clusterserviceversion.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run `make generate`)", path.display()))?;
    let csv: Value =
        crate::yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    csv.pointer("/spec/version")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{} has no spec.version", path.display()))
}

/// The `ApiResource` of an OLM kind.
pub fn olm_resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("operators.coreos.com", version, kind),
        plural,
    )
}

/// Namespaced API of an OLM kind.
fn olm_api(
    client: &Client,
    ns: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &olm_resource(version, kind, plural))
}

/// Subscriptions in `ns`.
pub fn subscriptions(client: &Client, ns: &str) -> Api<DynamicObject> {
    olm_api(client, ns, "v1alpha1", "Subscription", "subscriptions")
}

/// InstallPlans in `ns`.
pub fn install_plans(client: &Client, ns: &str) -> Api<DynamicObject> {
    olm_api(client, ns, "v1alpha1", "InstallPlan", "installplans")
}

/// ClusterServiceVersions in `ns`.
pub fn csvs(client: &Client, ns: &str) -> Api<DynamicObject> {
    olm_api(
        client,
        ns,
        "v1alpha1",
        "ClusterServiceVersion",
        "clusterserviceversions",
    )
}

/// CatalogSources in `ns`.
pub fn catalog_sources(client: &Client, ns: &str) -> Api<DynamicObject> {
    olm_api(client, ns, "v1alpha1", "CatalogSource", "catalogsources")
}

/// A string at a JSON pointer of an object's data (`""` when absent).
pub fn field<'a>(obj: &'a DynamicObject, pointer: &str) -> &'a str {
    obj.data
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The JSON at a pointer of an object's data (`null` when absent).
fn value(obj: &DynamicObject, pointer: &str) -> Value {
    obj.data.pointer(pointer).cloned().unwrap_or_default()
}

/// One line about an OLM object, for [`Olm::state_summary`].
type Describe = fn(&DynamicObject) -> String;

fn describe_subscription(s: &DynamicObject) -> String {
    format!(
        "Subscription {}: channel={} state={} currentCSV={} installedCSV={} installPlan={} conditions={}\n",
        s.name_any(),
        field(s, "/spec/channel"),
        field(s, "/status/state"),
        field(s, "/status/currentCSV"),
        field(s, "/status/installedCSV"),
        field(s, "/status/installPlanRef/name"),
        value(s, "/status/conditions")
    )
}

fn describe_install_plan(p: &DynamicObject) -> String {
    format!(
        "InstallPlan {}: csvs={} approved={} phase={} conditions={}\n",
        p.name_any(),
        value(p, "/spec/clusterServiceVersionNames"),
        value(p, "/spec/approved"),
        field(p, "/status/phase"),
        value(p, "/status/conditions")
    )
}

fn describe_csv(c: &DynamicObject) -> String {
    format!(
        "CSV {}: phase={} reason={} message={}\n",
        c.name_any(),
        field(c, "/status/phase"),
        field(c, "/status/reason"),
        field(c, "/status/message")
    )
}

/// OLM running against a local cluster. Dropping it stops every process it
/// started (the `olm` and `catalog` operators).
pub struct Olm {
    client: Client,
    logs_dir: PathBuf,
    /// Field order = drop order: processes first, the spawner last.
    operators: Vec<(ChildProcess, PathBuf)>,
    net: ClusterNet,
}

impl std::fmt::Debug for Olm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Olm")
            .field("logs_dir", &self.logs_dir)
            .finish_non_exhaustive()
    }
}

impl Olm {
    /// The cluster's network namespace (pod IPs are reachable in it).
    pub fn net(&self) -> &ClusterNet {
        &self.net
    }

    /// Installs OLM's CRDs, creates the `olm` and `operators` namespaces and
    /// the global OperatorGroup, and starts the `olm` and `catalog`
    /// operators with the cluster's admin kubeconfig.
    pub async fn start(cluster: &Cluster, tools: &crate::Tools) -> Result<Self> {
        let client = cluster.admin_client();
        let crds_dir = tools.olm_crds_dir();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&crds_dir)
            .with_context(|| format!("listing {}", crds_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("no OLM CRDs in {}", crds_dir.display());
        }
        for file in &files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let crd: CustomResourceDefinition = crate::yaml::from_str(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            operator::install_crd(&client, &crd)
                .await
                .with_context(|| format!("installing {}", file.display()))?;
        }
        operator::create_namespace(&client, OLM_NAMESPACE, &[]).await?;
        operator::create_namespace(&client, OPERATORS_NAMESPACE, &[]).await?;
        let groups = olm_api(
            &client,
            OPERATORS_NAMESPACE,
            "v1",
            "OperatorGroup",
            "operatorgroups",
        );
        let og: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1",
            "kind": "OperatorGroup",
            "metadata": {"name": GLOBAL_OPERATOR_GROUP, "namespace": OPERATORS_NAMESPACE},
            "spec": {}
        }))?;
        create_or_keep(&groups, &og).await?;

        let logs_dir = cluster.dir().join("logs");
        std::fs::create_dir_all(&logs_dir)?;
        let mut olm = Self {
            client,
            logs_dir,
            operators: Vec::new(),
            net: cluster.net(),
        };
        let kubeconfig = cluster.kubeconfig_path().to_path_buf();
        let mut cmd = Command::new(tools.bin("olm"));
        cmd.env("KUBECONFIG", &kubeconfig)
            .env("OPERATOR_NAMESPACE", OLM_NAMESPACE)
            .env("OPERATOR_NAME", "olm-operator")
            .args([
                "--namespace",
                OLM_NAMESPACE,
                "--writeStatusName=",
                "--writePackageServerStatusName=",
                "--interval=30s",
            ]);
        olm.spawn_operator("olm", cmd)?;
        let catalog_args = |cmd: &mut Command, opm: &str| {
            cmd.env("KUBECONFIG", &kubeconfig)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args([
                    "--namespace",
                    OLM_NAMESPACE,
                    "--writeStatusName=",
                    // No ConfigMap-based CatalogSource is ever created.
                    "--configmapServerImage=olm-tests.invalid/configmap-operator-registry:none",
                ])
                .arg(format!("--opmImage={opm}"))
                .arg(format!("--util-image={opm}"))
                .arg("--interval=30s");
        };
        let cmd = if cluster.has_real_node() {
            // Image catalogs: the registry pod's address is a Service name,
            // resolved through the cluster's CoreDNS; the host's resolver is
            // unreachable from the namespace. A private mount namespace
            // gives the catalog operator its own /etc/resolv.conf.
            let resolv = cluster.dir().join("olm-resolv.conf");
            std::fs::write(
                &resolv,
                format!(
                    "nameserver {}\nsearch {OLM_NAMESPACE}.svc.{domain} svc.{domain} {domain}\noptions ndots:5\n",
                    crate::cluster::NODE_IP,
                    domain = crate::cluster::CLUSTER_DOMAIN
                ),
            )?;
            let mut cmd = Command::new("unshare");
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
                .arg(&resolv)
                .arg(tools.bin("catalog"));
            catalog_args(&mut cmd, &crate::registry::opm_image(tools)?);
            cmd
        } else {
            let mut cmd = Command::new(tools.bin("catalog"));
            // Placeholders: without a real node no registry pod or unpack Job runs.
            catalog_args(&mut cmd, "olm-tests.invalid/opm:none");
            cmd
        };
        olm.spawn_operator("catalog", cmd)?;
        // Both must stay up (a bad flag or kubeconfig exits at once).
        tokio::time::sleep(Duration::from_secs(2)).await;
        olm.ensure_running()?;
        Ok(olm)
    }

    fn spawn_operator(&mut self, name: &str, cmd: Command) -> Result<()> {
        let log = self.logs_dir.join(format!("{name}.log"));
        let process = self.spawn(name, cmd, &log)?;
        self.operators.push((process, log));
        Ok(())
    }

    /// Starts `command` in the cluster's network namespace.
    fn spawn(&self, name: &str, command: Command, log: &Path) -> Result<ChildProcess> {
        let child = self
            .net
            .spawn(command, log)
            .with_context(|| format!("starting {name}"))?;
        Ok(ChildProcess::new(name, child))
    }

    /// Fails (with the logs) if `olm` or `catalog` exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        let mut dead = Vec::new();
        for (process, _) in &mut self.operators {
            if !process.running() {
                dead.push(process.name().to_owned());
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            bail!("{} exited\n{}", dead.join(", "), self.diagnostics())
        }
    }

    /// The admin client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The tails of the olm and catalog logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        let paths: Vec<PathBuf> = self.operators.iter().map(|(_, p)| p.clone()).collect();
        for path in paths {
            out.push_str(&format!(
                "\n--- {} (tail) ---\n{}\n",
                path.display(),
                log_tail(&path, LOG_TAIL_LINES)
            ));
        }
        out
    }

    /// Points the CatalogSource `name` in [`OLM_NAMESPACE`] at the catalog
    /// image `image` (creating it, or changing `spec.image`: a catalog
    /// update) and waits until OLM's registry pod serves it: the source
    /// `READY` at the address of its Service, with a registry pod running
    /// `image`.
    pub async fn catalog_from_image(&mut self, name: &str, image: &str) -> Result<()> {
        let api = catalog_sources(&self.client, OLM_NAMESPACE);
        let source: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1alpha1",
            "kind": "CatalogSource",
            "metadata": {"name": name, "namespace": OLM_NAMESPACE},
            "spec": {
                "sourceType": "grpc",
                "image": image,
                "grpcPodConfig": {"securityContextConfig": "restricted"},
                "displayName": "Locust operator catalog",
                "publisher": "olm-tests"
            }
        }))?;
        api.patch(
            name,
            &PatchParams::apply("olm-tests").force(),
            &Patch::Apply(&source),
        )
        .await
        .with_context(|| format!("applying CatalogSource {name}"))?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), OLM_NAMESPACE);
        let selector = format!("olm.catalogSource={name}");
        let ready = wait_for(Duration::from_secs(180), POLL, || {
            let (api, pods, selector) = (api.clone(), pods.clone(), selector.clone());
            async move {
                let cs = api.get(name).await?;
                let state = field(&cs, "/status/connectionState/lastObservedState");
                let address = field(&cs, "/status/connectionState/address");
                let service = field(&cs, "/status/registryService/serviceName");
                if state != "READY" || service.is_empty() || !address.starts_with(service) {
                    return Ok(None);
                }
                let serving = pods
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .into_iter()
                    .any(|p| {
                        let running =
                            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                        let img = p
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.first())
                            .and_then(|c| c.image.as_deref());
                        running && img == Some(image)
                    });
                Ok(serving.then_some(()))
            }
        })
        .await;
        if let Err(e) = ready {
            let last = api.get(name).await.ok().map(|c| c.data["status"].clone());
            let listed = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .map(|p| {
                            format!(
                                "{} {:?}",
                                p.name_any(),
                                p.status.as_ref().map(|s| (&s.phase, &s.container_statuses))
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            return Err(e.context(format!(
                "CatalogSource {name} ({image}) never READY from its registry pod; status: {last:?}; pods: {listed:?}{}",
                self.diagnostics()
            )));
        }
        Ok(())
    }

    /// Creates Subscription `name` in [`OPERATORS_NAMESPACE`] to [`PACKAGE`]
    /// from CatalogSource `source`.
    pub async fn subscribe(
        &self,
        name: &str,
        source: &str,
        channel: &str,
        approval: Approval,
        starting_csv: Option<&str>,
    ) -> Result<()> {
        let mut spec = json!({
            "channel": channel,
            "name": PACKAGE,
            "source": source,
            "sourceNamespace": OLM_NAMESPACE,
            "installPlanApproval": approval.as_str(),
        });
        if let Some(csv) = starting_csv {
            spec["startingCSV"] = json!(csv);
        }
        let sub: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1alpha1",
            "kind": "Subscription",
            "metadata": {"name": name, "namespace": OPERATORS_NAMESPACE},
            "spec": spec,
        }))?;
        subscriptions(&self.client, OPERATORS_NAMESPACE)
            .create(&PostParams::default(), &sub)
            .await
            .with_context(|| format!("creating Subscription {name}"))?;
        Ok(())
    }

    /// Merge-patches a Subscription's spec (e.g. `{"channel": "stable"}`).
    pub async fn patch_subscription(&self, name: &str, spec: Value) -> Result<()> {
        subscriptions(&self.client, OPERATORS_NAMESPACE)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .with_context(|| format!("patching Subscription {name}"))?;
        Ok(())
    }

    /// A one-line-per-object summary of Subscriptions, InstallPlans and CSVs
    /// in [`OPERATORS_NAMESPACE`].
    pub async fn state_summary(&self) -> String {
        let mut out = String::from("--- OLM objects ---\n");
        let lp = ListParams::default();
        let kinds: [(Api<DynamicObject>, Describe); 3] = [
            (
                subscriptions(&self.client, OPERATORS_NAMESPACE),
                describe_subscription,
            ),
            (
                install_plans(&self.client, OPERATORS_NAMESPACE),
                describe_install_plan,
            ),
            (csvs(&self.client, OPERATORS_NAMESPACE), describe_csv),
        ];
        for (api, describe) in kinds {
            if let Ok(list) = api.list(&lp).await {
                for o in list.items {
                    out.push_str(&describe(&o));
                }
            }
        }
        out
    }

    /// Fails with the OLM objects and logs attached.
    pub async fn fail(&self, error: anyhow::Error) -> anyhow::Error {
        let summary = self.state_summary().await;
        error.context(format!("{summary}{}", self.diagnostics()))
    }

    /// Waits until Subscription `name` reports `installedCSV == csv` and that
    /// CSV is `Succeeded`; returns the CSV.
    pub async fn wait_installed(
        &self,
        sub: &str,
        csv: &str,
        timeout: Duration,
    ) -> Result<DynamicObject> {
        let what = format!("Subscription {sub}: waiting for {csv} Succeeded");
        let csv_api = csvs(&self.client, OPERATORS_NAMESPACE);
        self.wait_subscription_ref(
            (sub, &what),
            csv_api,
            timeout,
            |s| (field(s, "/status/installedCSV") == csv).then(|| csv.to_owned()),
            |c| field(c, "/status/phase") == "Succeeded",
        )
        .await
    }

    /// Waits for an InstallPlan of Subscription `sub` that installs `csv`
    /// (by `spec.clusterServiceVersionNames`); returns it.
    pub async fn wait_install_plan(
        &self,
        sub: &str,
        csv: &str,
        timeout: Duration,
    ) -> Result<DynamicObject> {
        let what = format!("Subscription {sub}: waiting for an InstallPlan for {csv}");
        let plans = install_plans(&self.client, OPERATORS_NAMESPACE);
        let installs_csv = |p: &DynamicObject| {
            p.data
                .pointer("/spec/clusterServiceVersionNames")
                .and_then(Value::as_array)
                .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(csv)))
        };
        self.wait_subscription_ref(
            (sub, &what),
            plans,
            timeout,
            |s| Some(field(s, "/status/installPlanRef/name").to_owned()).filter(|n| !n.is_empty()),
            installs_csv,
        )
        .await
    }

    /// Waits until Subscription `sub` names (by `name_of`) an object of
    /// `api` that exists and that `accept` takes; returns that object, or
    /// fails ([`Self::or_fail`]) as waiting for `what`.
    async fn wait_subscription_ref(
        &self,
        (sub, what): (&str, &str),
        api: Api<DynamicObject>,
        timeout: Duration,
        name_of: impl Fn(&DynamicObject) -> Option<String>,
        accept: impl Fn(&DynamicObject) -> bool,
    ) -> Result<DynamicObject> {
        let subs = subscriptions(&self.client, OPERATORS_NAMESPACE);
        let (name_of, accept) = (&name_of, &accept);
        let res = wait_for(timeout, POLL, || {
            let subs = subs.clone();
            let api = api.clone();
            async move {
                let s = subs.get(sub).await?;
                let Some(name) = name_of(&s) else {
                    return Ok(None);
                };
                let Some(o) = api.get_opt(&name).await? else {
                    return Ok(None);
                };
                Ok(accept(&o).then_some(o))
            }
        })
        .await;
        self.or_fail(res, || what.to_owned()).await
    }

    /// `result`, or its error with `what()` and [`Self::fail`]'s OLM objects
    /// and logs attached.
    async fn or_fail<T>(&self, result: Result<T>, what: impl FnOnce() -> String) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(e.context(what())).await),
        }
    }

    /// Waits until InstallPlan `name` is `Complete` (fails at once if it is `Failed`).
    pub async fn wait_plan_complete(&self, name: &str, timeout: Duration) -> Result<()> {
        let plans = install_plans(&self.client, OPERATORS_NAMESPACE);
        let res = wait_for(timeout, POLL, || {
            let plans = plans.clone();
            async move {
                let p = plans.get(name).await?;
                match field(&p, "/status/phase") {
                    "Complete" => Ok(Some(Ok(()))),
                    "Failed" => Ok(Some(Err(anyhow!("InstallPlan {name} Failed")))),
                    _ => Ok(None),
                }
            }
        })
        .await
        .and_then(|r| r);
        self.or_fail(res, || {
            format!("waiting for InstallPlan {name} to be Complete")
        })
        .await
    }

    /// Approves InstallPlan `name`.
    pub async fn approve(&self, name: &str) -> Result<()> {
        install_plans(&self.client, OPERATORS_NAMESPACE)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"approved": true}})),
            )
            .await
            .with_context(|| format!("approving InstallPlan {name}"))?;
        Ok(())
    }

    /// Uninstalls the way OLM documents it: deletes Subscription `sub` (its
    /// InstallPlans go with it; any left are deleted too, so that a plan still
    /// being synced cannot re-create the CSV) and then every CSV in
    /// [`OPERATORS_NAMESPACE`], and waits until the operator's Deployment is gone.
    pub async fn uninstall(&self, sub: &str) -> Result<()> {
        let subs = subscriptions(&self.client, OPERATORS_NAMESPACE);
        let plans = install_plans(&self.client, OPERATORS_NAMESPACE);
        let csv_api = csvs(&self.client, OPERATORS_NAMESPACE);
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client.clone(), OPERATORS_NAMESPACE);
        ignore_not_found(subs.delete(sub, &DeleteParams::default()).await)
            .with_context(|| format!("deleting Subscription {sub}"))?;
        let res = wait_for(Duration::from_secs(120), Duration::from_millis(500), || {
            let (subs, plans, csv_api, deployments) = (
                subs.clone(),
                plans.clone(),
                csv_api.clone(),
                deployments.clone(),
            );
            async move {
                if subs.get_opt(sub).await?.is_some() {
                    return Ok(None);
                }
                let lp = ListParams::default();
                let mut left = 0;
                for p in plans.list(&lp).await?.items {
                    left += 1;
                    ignore_not_found(plans.delete(&p.name_any(), &DeleteParams::default()).await)?;
                }
                for c in csv_api.list(&lp).await?.items {
                    left += 1;
                    if c.metadata.deletion_timestamp.is_none() {
                        ignore_not_found(
                            csv_api
                                .delete(&c.name_any(), &DeleteParams::default())
                                .await,
                        )?;
                    }
                }
                if deployments.get_opt(DEPLOYMENT).await?.is_some() {
                    left += 1;
                }
                Ok((left == 0).then_some(()))
            }
        })
        .await;
        let what = || {
            format!(
                "uninstalling: waiting for Subscription {sub}, its InstallPlans, the CSVs and the Deployment to be removed"
            )
        };
        self.or_fail(res, what).await
    }
}

fn ignore_not_found<T>(result: kube::Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Waits until OLM has wired the operator's webhooks: the CRD's conversion
/// webhook names [`WEBHOOK_SERVICE`] in [`OPERATORS_NAMESPACE`] with a CA
/// bundle (OLM rewrites the bundle's placeholder after the CSV reports
/// `Succeeded`), and the validating webhook configuration exists.
pub async fn wait_webhooks_wired(client: &Client, timeout: Duration) -> Result<()> {
    wait_webhooks_wired_in(client, OPERATORS_NAMESPACE, timeout).await
}

/// Where the CRD's conversion webhook is called and what CA it trusts, if
/// it converts by webhook.
pub fn conversion_client_config(
    crd: &CustomResourceDefinition,
) -> Option<&k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig>
{
    crd.spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
}

/// [`wait_webhooks_wired`] for an operator installed in namespace `ns`.
pub async fn wait_webhooks_wired_in(client: &Client, ns: &str, timeout: Duration) -> Result<()> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let res = wait_for(timeout, POLL, || {
        let (crds, vwcs) = (crds.clone(), vwcs.clone());
        async move {
            let crd = crds.get(CRD_NAME).await?;
            let cc = conversion_client_config(&crd);
            let crd_ok = cc.is_some_and(|cc| {
                cc.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty())
                    && cc
                        .service
                        .as_ref()
                        .is_some_and(|s| s.name == WEBHOOK_SERVICE && s.namespace == ns)
            });
            let vwc_ok = vwcs
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .any(|c| {
                    c.webhooks.iter().flatten().any(|w| {
                        w.name.starts_with("vlocusttest.locust.io")
                            && w.client_config
                                .service
                                .as_ref()
                                .is_some_and(|s| s.namespace == ns)
                    })
                });
            Ok((crd_ok && vwc_ok).then_some(()))
        }
    })
    .await;
    if res.is_err() {
        let last = crds.get(CRD_NAME).await.ok().map(|c| c.spec.conversion);
        return res.with_context(|| {
            format!("waiting for OLM to wire the webhooks; CRD conversion: {last:?}")
        });
    }
    Ok(())
}

/// `spec.installPlanApproval` of a Subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// OLM applies InstallPlans at once.
    Automatic,
    /// InstallPlans wait for `spec.approved: true`.
    Manual,
}

impl Approval {
    /// The API value.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Automatic => "Automatic",
            Approval::Manual => "Manual",
        }
    }
}

async fn create_or_keep(api: &Api<DynamicObject>, obj: &DynamicObject) -> Result<()> {
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", obj.name_any())),
    }
}

/// The label OLM's Deployment gives the operator's pods.
pub const OPERATOR_POD_SELECTOR: &str = "app.kubernetes.io/name=locust-k8s-operator";

/// The operator image a release's CSV names (`manifests-gen`'s default:
/// the repository and the release version as the tag).
pub fn operator_image(version: &str) -> String {
    format!("{}:{version}", manifests_gen::OPERATOR_IMAGE_REPO)
}

/// Fails unless OLM unpacked `bundle` in namespace `ns` with an unpack Job
/// that completed: its `pull` init container ran the bundle image.
pub async fn ensure_unpacked(client: &Client, ns: &str, bundle: &str) -> Result<()> {
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), ns);
    let listed = jobs.list(&ListParams::default()).await?.items;
    let unpacked = listed.iter().any(|j| {
        let pulls_bundle = j
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .is_some_and(|p| {
                p.init_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == "pull" && c.image.as_deref() == Some(bundle))
            });
        let complete = j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1;
        pulls_bundle && complete
    });
    if !unpacked {
        bail!(
            "no completed unpack Job pulled {bundle}; Jobs: {:?}",
            listed
                .iter()
                .map(|j| (j.name_any(), j.status.clone()))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Waits until the operator OLM installed runs for real: its Deployment
/// Available with every replica ready, each of its pods Running and Ready
/// with `image` (the CSV's), on the real node, and the webhooks wired
/// (OLM's CA in the CRD and the validating webhook configuration). The
/// webhooks are then served by those pods through the webhook Service.
pub async fn wait_operator_running(
    client: &Client,
    image: &str,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    wait_operator_running_in(client, OPERATORS_NAMESPACE, image, timeout).await
}

/// [`wait_operator_running`] for an operator installed in namespace `ns`.
pub async fn wait_operator_running_in(
    client: &Client,
    ns: &str,
    image: &str,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    wait_webhooks_wired_in(client, ns, timeout).await?;
    wait_deployment_running_in(client, ns, image, timeout).await
}

/// Waits until the operator Deployment [`DEPLOYMENT`] in `ns` runs `image`:
/// Available, every replica updated and ready, and its pods (no terminating
/// one left) each Ready with `image`. On a timeout: the operator pods' logs.
/// However it was installed (OLM, the chart, `install.yaml`).
pub async fn wait_deployment_running_in(
    client: &Client,
    ns: &str,
    image: &str,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let waited = wait_for(timeout, POLL, || {
        let deployments = deployments.clone();
        let pods = pods.clone();
        async move {
            let Some(d) = deployments.get_opt(DEPLOYMENT).await? else {
                return Ok(None);
            };
            let status = d.status.unwrap_or_default();
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let available = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Available" && c.status == "True");
            if !available
                || status.ready_replicas != Some(want)
                || status.updated_replicas != Some(want)
                || status.replicas != Some(want)
            {
                return Ok(None);
            }
            let listed = pods
                .list(&ListParams::default().labels(OPERATOR_POD_SELECTOR))
                .await?
                .items;
            // Every operator pod, terminating ones included: a replaced pod
            // that still shuts down may still be behind the webhook Service.
            let all = listed.len();
            let ready: Vec<Pod> = listed
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    let spec_image = p
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.as_deref());
                    let is_ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    spec_image == Some(image) && is_ready
                })
                .collect();
            let want = usize::try_from(want).unwrap_or(0);
            Ok((ready.len() == want && all == want).then_some(ready))
        }
    })
    .await;
    match waited {
        Ok(pods) => Ok(pods),
        Err(e) => Err(e.context(format!(
            "waiting for the operator Deployment to run {image}; pods:\n{}",
            operator_logs_in(client, ns, 20).await
        ))),
    }
}

/// Creates `obj` through `api` once the operator's admission webhook can be
/// called, and returns what the apiserver stored.
///
/// A pod that turned Ready is not yet behind its Service: the EndpointSlice
/// controller and then kube-proxy must see it first, and until they do the
/// apiserver's call to the webhook Service is refused ("failed calling
/// webhook … connection refused"). OLM reports the CSV `Succeeded` in that
/// window, and so does `kubectl wait --for=condition=Available`. A user
/// retries; so does this, every second for at most `timeout`, and prints how
/// long the window lasted as a FIGURE. Any other error fails at once; so does
/// the deadline, with the operator pods' logs (`operator_ns`).
pub async fn create_when_admitted<K>(
    api: &Api<K>,
    obj: &K,
    operator_ns: &str,
    timeout: Duration,
) -> Result<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let started = std::time::Instant::now();
    let refused = std::sync::Mutex::new(Vec::<String>::new());
    let created = wait_for(timeout, Duration::from_secs(1), || {
        let refused = &refused;
        async move {
            match api.create(&PostParams::default(), obj).await {
                Ok(stored) => Ok(Some(stored)),
                Err(e) if e.to_string().contains("failed calling webhook") => {
                    refused
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(e.to_string());
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        }
    })
    .await;
    let refused = refused
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = obj.meta().name.clone().unwrap_or_default();
    match created {
        Ok(stored) => {
            if let Some(first) = refused.first() {
                eprintln!(
                    "FIGURE the webhook refused {} create(s) of {name} ({first}); admitted {:.1} s after the first try",
                    refused.len(),
                    started.elapsed().as_secs_f64(),
                );
            }
            Ok(stored)
        }
        Err(e) => Err(e.context(format!(
            "creating {name} ({} refusal(s) by the webhook); operator pods:\n{}",
            refused.len(),
            operator_logs_in(&api.clone().into_client(), operator_ns, 20).await
        ))),
    }
}

/// The last `lines` log lines of every operator pod (with its status), for
/// failure messages.
pub async fn operator_logs(client: &Client, lines: i64) -> String {
    operator_logs_in(client, OPERATORS_NAMESPACE, lines).await
}

/// [`operator_logs`] of an operator installed in namespace `ns`.
pub async fn operator_logs_in(client: &Client, ns: &str, lines: i64) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = match pods
        .list(&ListParams::default().labels(OPERATOR_POD_SELECTOR))
        .await
    {
        Ok(l) => l.items,
        Err(e) => return format!("<cannot list the operator pods: {e}>"),
    };
    let mut out = String::new();
    for pod in listed {
        let name = pod.name_any();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let log = crate::cluster::pod_log_tail(&pods, &name, lines).await;
        out.push_str(&format!("--- pod {name} ({phase}) ---\n{log}\n"));
    }
    if out.is_empty() {
        out.push_str("<no operator pods>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_log_tails() {
        assert_eq!(csv_name("2.0.1"), "locust-k8s-operator.v2.0.1");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(log_tail(&log, 2), "b\nc");
        assert!(log_tail(&dir.path().join("missing"), 2).contains("cannot read"));
    }
}
