//! `make demo`: boots the local cluster with a real node, installs the
//! operator (through OLM, or as a process with `--operator-process`), and
//! runs two real Locust tests in containers against an HTTP target in the
//! cluster: the sample LocustTest (it ends `Succeeded` with real numbers in
//! `status.result`) and a copy aimed at a flaky target with a fail-ratio
//! threshold (it ends `Failed` with `ThresholdsBreached`), then tears
//! everything down. Nothing in it plays the kubelet: every pod is a real
//! container on the real node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::v2::ThresholdsSpec;
use locust_operator::api::{LocustTest, LocustTestStatus, Phase, condition_type as ct};
use serde_json::json;

use crate::cluster::{Cluster, ClusterOptions, pod_phase};
use crate::images::{self, Image, TARGET_PORT};
use crate::operator::{self, OperatorProcess};
use crate::tools::Tools;
use crate::wait::wait_for;

/// The sample test (as in `operator/samples/locusttest-v2.yaml`).
pub const SAMPLE_TEST: &str = "demo";
/// The copy aimed at the flaky target, with a threshold it breaks.
pub const BREACH_TEST: &str = "demo-breach";
/// The target the sample names (`--host http://demo-target:8080`).
pub const TARGET: &str = "demo-target";
/// A target that answers every 10th request with 500.
pub const FLAKY_TARGET: &str = "demo-target-flaky";
/// The flaky target's failure period (`-fail-every`).
pub const FLAKY_EVERY: u32 = 10;
/// The breach test's threshold (a 10% failure rate breaks it).
pub const BREACH_MAX_FAIL_RATIO: f64 = 0.01;

const NS: &str = "default";
const POLL: Duration = Duration::from_millis(500);

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Install through OLM (catalog → Subscription → CSV, the operator
    /// Deployment's pods on the real node), as users do; when false, run the
    /// operator as a process in the cluster's network namespace (the fast
    /// development path).
    pub olm: bool,
    /// Keep the cluster (and operator) up after the tests, until Ctrl-C.
    pub keep: bool,
}

fn line(st: &LocustTestStatus) -> String {
    let conds: Vec<String> = st
        .conditions
        .iter()
        .map(|c| format!("{}={}({})", c.type_, c.status, c.reason))
        .collect();
    let live = st
        .live
        .as_ref()
        .map(|l| {
            format!(
                " users={} rps={:.1} failratio={:.3}",
                l.current_users.unwrap_or(0),
                l.requests_per_second.unwrap_or(0.0),
                l.fail_ratio.unwrap_or(0.0)
            )
        })
        .unwrap_or_default();
    format!(
        "phase={:<9} workers={}/{}{live}  {}",
        st.phase.map(|p| p.as_str()).unwrap_or("-"),
        st.connected_workers.unwrap_or(0),
        st.expected_workers.unwrap_or(0),
        conds.join(" ")
    )
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    crate::yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A Deployment of the HTTP target image and a Service `name:8080` in front
/// of it; `fail_every`: every n-th request fails.
async fn start_target(client: &Client, name: &str, fail_every: u32) -> Result<()> {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "target",
                    "image": images::Image::Target.reference(),
                    "args": ["-fail-every", fail_every.to_string()],
                    "ports": [{"containerPort": TARGET_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": TARGET_PORT}, "periodSeconds": 1},
                    "securityContext": images::restricted_security_context(),
                }]},
            },
        },
    }))?;
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .with_context(|| format!("creating Deployment {name}"))?;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": TARGET_PORT, "targetPort": TARGET_PORT}]},
    }))?;
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &service)
        .await
        .with_context(|| format!("creating Service {name}"))?;
    Ok(())
}

/// The pod of target `name`, once Ready.
async fn target_pod(client: &Client, name: &str) -> Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(Duration::from_secs(120), POLL, || {
        let pods = pods.clone();
        async move {
            let listed = pods
                .list(&ListParams::default().labels(&format!("app={name}")))
                .await?
                .items;
            Ok(listed.into_iter().find(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            }))
        }
    })
    .await
    .with_context(|| format!("waiting for a Ready pod of {name}"))
}

/// The target's own count of the requests it answered (`/stats`).
async fn target_requests(cluster: &Cluster, pod: &Pod) -> Result<u64> {
    let ip: std::net::IpAddr = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .context("target pod without IP")?
        .parse()?;
    let (code, body) = cluster
        .http_get(SocketAddr::new(ip, TARGET_PORT), "/stats")
        .await?;
    if code != 200 {
        bail!("target /stats answered {code}: {body}");
    }
    let stats: serde_json::Value = serde_json::from_str(&body)?;
    stats["requests"]
        .as_u64()
        .with_context(|| format!("no request count in {body}"))
}

/// The sample LocustTest (image: the Locust image built here) and its copy
/// aimed at the flaky target with a fail-ratio threshold.
fn demo_tests() -> Result<(LocustTest, LocustTest)> {
    let root = operator::workspace_root().join("operator/samples");
    let mut sample: LocustTest = read(&root.join("locusttest-v2.yaml"))?;
    sample.spec.image = images::locust_image();
    let mut breach = sample.clone();
    breach.metadata.name = Some(BREACH_TEST.into());
    breach.spec.master.command = sample.spec.master.command.replace(
        &format!("http://{TARGET}:"),
        &format!("http://{FLAKY_TARGET}:"),
    );
    if breach.spec.master.command == sample.spec.master.command {
        bail!("the sample's master command does not name http://{TARGET}:…");
    }
    breach.spec.worker.replicas = 1;
    breach.spec.thresholds = Some(ThresholdsSpec {
        max_fail_ratio: Some(BREACH_MAX_FAIL_RATIO),
        ..ThresholdsSpec::default()
    });
    Ok((sample, breach))
}

/// Runs the demo: through OLM, or with the operator as a process.
pub async fn run(tools: Tools, opts: DemoOptions) -> Result<()> {
    let started = Instant::now();
    let stamp = move || format!("{:>6.1}s", started.elapsed().as_secs_f64());
    let images = images::Images::locate()?;
    println!(
        "demo: booting the local control plane and a real node (kubelet, containerd + runc, kube-proxy, CoreDNS) in a network namespace of their own…"
    );
    let cluster =
        Cluster::start(ClusterOptions::real_node_from(tools.clone(), "locust-demo")).await?;
    println!(
        "{} cluster ready in {:.1}s (images imported: {}) — export KUBECONFIG={}",
        stamp(),
        cluster.startup_duration().as_secs_f64(),
        Image::ALL
            .iter()
            .map(|i| images.reference(*i))
            .collect::<Vec<_>>()
            .join(", "),
        cluster.kubeconfig_path().display()
    );
    let client = cluster.admin_client();

    let mut olm_handle = None;
    let mut registry_handle = None;
    let mut process = None;
    if opts.olm {
        println!(
            "{} starting the local registry and pushing the release's images (operator, bundle, catalog)…",
            stamp()
        );
        let registry = crate::registry::Registry::start(&cluster, &tools).await?;
        let version: semver::Version = crate::olm::current_version()?.parse()?;
        let published = registry.publish_release(
            &tools,
            &images,
            &manifests_gen::Options::new(crate::operator::workspace_root()),
            std::slice::from_ref(&version),
        )?;
        println!(
            "{} starting OLM (olm and catalog operators) with a CatalogSource for {}…",
            stamp(),
            published.catalog
        );
        let mut olm = crate::olm::Olm::start(&cluster, &tools).await?;
        olm.catalog_from_image("locust-catalog", &published.catalog)
            .await?;
        registry_handle = Some(registry);
        let version = version.to_string();
        let csv = crate::olm::csv_name(&version);
        println!(
            "{} subscribing to package {} channel stable (Subscription in namespace {})…",
            stamp(),
            crate::olm::PACKAGE,
            crate::olm::OPERATORS_NAMESPACE
        );
        olm.subscribe(
            "locust-k8s-operator",
            "locust-catalog",
            "stable",
            crate::olm::Approval::Automatic,
            None,
        )
        .await?;
        if let Err(e) = olm
            .wait_installed("locust-k8s-operator", &csv, Duration::from_secs(240))
            .await
        {
            bail!("{e:#}\n{}", olm.diagnostics());
        }
        println!(
            "{} {csv} Succeeded: OLM installed the CRD (conversion webhook + CA), the webhooks, RBAC, ServiceAccount and Deployment",
            stamp()
        );
        let image = crate::olm::operator_image(&version);
        let pods =
            crate::olm::wait_operator_running(&client, &image, Duration::from_secs(180)).await?;
        for pod in &pods {
            println!(
                "{}   operator pod {} Running and Ready on node {} ({image}), serving the webhooks through Service {}",
                stamp(),
                pod.name_any(),
                pod.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("?"),
                crate::olm::WEBHOOK_SERVICE
            );
        }
        olm_handle = Some(olm);
    } else {
        println!(
            "{} installing the CRD (from bundle/) and the operator's RBAC, starting the operator as a process in the cluster's network namespace…",
            stamp()
        );
        let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
        let op = OperatorProcess::spawn_single_replica(&cluster, &kubeconfig, "demo")?;
        let ready = op.wait_ready(Duration::from_secs(60)).await?;
        println!(
            "{} operator ready in {} ms (log: {})",
            stamp(),
            ready.as_millis(),
            op.log_path.display()
        );
        process = Some(op);
    }

    println!(
        "{} starting the targets: Deployment+Service {TARGET} (healthy) and {FLAKY_TARGET} (every {FLAKY_EVERY}th request fails), image {}",
        stamp(),
        images.reference(Image::Target)
    );
    start_target(&client, TARGET, 0).await?;
    start_target(&client, FLAKY_TARGET, FLAKY_EVERY).await?;
    let target = target_pod(&client, TARGET).await?;
    target_pod(&client, FLAKY_TARGET).await?;

    let root = operator::workspace_root().join("operator/samples");
    let cm: ConfigMap = read(&root.join("demo-locustfile.yaml"))?;
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &cm)
        .await
        .context("creating the demo ConfigMap")?;
    let (sample, breach) = demo_tests()?;
    println!(
        "{} applying operator/samples/demo-locustfile.yaml and operator/samples/locusttest-v2.yaml (`{SAMPLE_TEST}`, image {}: the Locust image built here)",
        stamp(),
        sample.spec.image
    );
    println!(
        "{} and `{BREACH_TEST}`: the same test against {FLAKY_TARGET} with 1 worker and thresholds.maxFailRatio={BREACH_MAX_FAIL_RATIO}",
        stamp()
    );
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), NS);
    for t in [&sample, &breach] {
        tests
            .create(&PostParams::default(), t)
            .await
            .with_context(|| format!("creating LocustTest {}", t.name_any()))?;
    }

    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut finals: BTreeMap<String, LocustTestStatus> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while finals.len() < 2 {
        if Instant::now() > deadline {
            let log = match &process {
                Some(op) => op.log_tail(30),
                None => crate::olm::operator_logs(&client, 30).await,
            };
            bail!("demo: the tests did not finish in 300 s; operator log:\n{log}");
        }
        for name in [SAMPLE_TEST, BREACH_TEST] {
            if finals.contains_key(name) {
                continue;
            }
            let t = tests.get(name).await?;
            let Some(st) = &t.status else { continue };
            let l = line(st);
            if last.get(name) != Some(&l) {
                println!("{} {name:<11} {l}", stamp());
                last.insert(name.to_owned(), l);
            }
            if st.phase.is_some_and(Phase::is_terminal) {
                finals.insert(name.to_owned(), st.clone());
            }
        }
        tokio::time::sleep(POLL).await;
    }

    let sample_status = &finals[SAMPLE_TEST];
    let breach_status = &finals[BREACH_TEST];
    println!(
        "{} final status of `{SAMPLE_TEST}`:\n{}",
        stamp(),
        crate::yaml::to_string(sample_status)?
    );
    let completed = |st: &LocustTestStatus| {
        st.conditions
            .iter()
            .find(|c| c.type_ == ct::TEST_COMPLETED)
            .map(|c| format!("{} — {}", c.reason, c.message))
            .unwrap_or_default()
    };
    println!(
        "{} `{BREACH_TEST}` ended {}: {}",
        stamp(),
        breach_status.phase.map(|p| p.as_str()).unwrap_or("-"),
        completed(breach_status)
    );
    match target_requests(&cluster, &target).await {
        Ok(n) => println!(
            "{} {TARGET} itself answered {n} requests (Locust counted {} in status.result.totalRequests)",
            stamp(),
            sample_status
                .result
                .as_ref()
                .and_then(|r| r.total_requests)
                .unwrap_or(0)
        ),
        Err(e) => println!("{} could not read {TARGET}'s own count: {e:#}", stamp()),
    }
    let events = Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    println!("demo: Events of the LocustTests:");
    for e in events.items.iter().filter(|e| {
        matches!(
            e.regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some(SAMPLE_TEST | BREACH_TEST)
        )
    }) {
        println!(
            "  {:<11} {:<8} {:<18} {}",
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .unwrap_or(""),
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.note.as_deref().unwrap_or("")
        );
    }
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("app.kubernetes.io/name=locust"))
        .await?;
    println!("demo: the Locust pods (real containers on the real node):");
    for p in &pods.items {
        println!(
            "  {:<28} {:<10} exit code {}",
            p.name_any(),
            pod_phase(p),
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code.to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
    if opts.keep {
        println!(
            "demo: keeping the cluster up — export KUBECONFIG={}; Ctrl-C to stop",
            cluster.kubeconfig_path().display()
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    println!("demo: tearing down");
    drop(process);
    drop(olm_handle);
    drop(registry_handle);
    cluster.stop();
    println!("demo: done in {:.1}s", started.elapsed().as_secs_f64());

    let total = sample_status
        .result
        .as_ref()
        .and_then(|r| r.total_requests)
        .unwrap_or(0);
    if sample_status.phase != Some(Phase::Succeeded) || total == 0 {
        bail!(
            "demo: `{SAMPLE_TEST}` ended {:?} with {total} requests",
            sample_status.phase
        );
    }
    let breached = breach_status
        .conditions
        .iter()
        .any(|c| c.type_ == ct::TEST_COMPLETED && c.reason == "ThresholdsBreached");
    if breach_status.phase != Some(Phase::Failed) || !breached {
        bail!(
            "demo: `{BREACH_TEST}` should end Failed/ThresholdsBreached, ended {:?}: {}",
            breach_status.phase,
            completed(breach_status)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breach_test_is_the_sample_aimed_at_the_flaky_target() {
        let (sample, breach) = demo_tests().unwrap();
        assert_eq!(sample.name_any(), SAMPLE_TEST);
        assert_eq!(breach.name_any(), BREACH_TEST);
        assert_eq!(sample.spec.image, images::locust_image());
        assert!(
            sample
                .spec
                .master
                .command
                .contains(&format!("http://{TARGET}:{TARGET_PORT}"))
        );
        assert!(
            breach
                .spec
                .master
                .command
                .contains(&format!("http://{FLAKY_TARGET}:{TARGET_PORT}"))
        );
        assert_eq!(breach.spec.worker.replicas, 1);
        let th = breach.spec.thresholds.clone().unwrap();
        assert_eq!(th.max_fail_ratio, Some(BREACH_MAX_FAIL_RATIO));
        // A fail-every-10 target fails 10% of requests: well above the limit.
        assert!(1.0 / f64::from(FLAKY_EVERY) > BREACH_MAX_FAIL_RATIO * 5.0);
    }
}
