//! `make demo`: boots the local cluster, installs the operator, applies the
//! sample LocustTest and shows its phase, workers and conditions changing until
//! it finishes, then tears everything down.
//!
//! The cluster's nodes are kwok fakes: pods are scheduled and "run", but no
//! container starts. The demo therefore plays the kubelet's part for the end
//! of the run and says so: after the test has run for a while it marks the
//! master pod as exited with code 0, as Locust does when `--run-time` and
//! `--autoquit` end the test.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, LocustTestStatus, Phase};

use crate::cluster::{Cluster, ClusterOptions};
use crate::operator::{self, OperatorProcess};
use crate::tools::Tools;

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Install through OLM (catalog → Subscription → CSV), as users do; when
    /// false, run the operator as a local process (the fast development path).
    pub olm: bool,
    /// How long the sample test "runs" before the demo ends its master pod.
    pub run_for: Duration,
    /// Keep the cluster (and operator) up after the test, until Ctrl-C.
    pub keep: bool,
}

fn line(st: &LocustTestStatus) -> String {
    let conds: Vec<String> = st
        .conditions
        .iter()
        .map(|c| format!("{}={}({})", c.type_, c.status, c.reason))
        .collect();
    format!(
        "phase={:<9} workers={}/{}  {}",
        st.phase.map(|p| p.as_str()).unwrap_or("-"),
        st.connected_workers.unwrap_or(0),
        st.expected_workers.unwrap_or(0),
        conds.join(" ")
    )
}

async fn apply_samples(client: &Client, ns: &str) -> Result<LocustTest> {
    let root = operator::workspace_root().join("operator/samples");
    let cm: ConfigMap = read(&root.join("demo-locustfile.yaml"))?;
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .context("creating the demo ConfigMap")?;
    let test: LocustTest = read(&root.join("locusttest-v2.yaml"))?;
    Api::<LocustTest>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &test)
        .await
        .context("creating the sample LocustTest")
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs the demo: through OLM, or with the operator as a local process.
pub async fn run(tools: Tools, opts: DemoOptions) -> Result<()> {
    let started = Instant::now();
    let tools_dir = tools.clone();
    println!(
        "demo: booting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)…"
    );
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        name: "locust-demo".into(),
        ..ClusterOptions::default()
    })
    .await?;
    println!(
        "demo: cluster ready in {:.1}s — export KUBECONFIG={}",
        cluster.startup_duration().as_secs_f64(),
        cluster.kubeconfig_path().display()
    );
    let mut olm_handle = None;
    let mut webhook = None;
    let process = if opts.olm {
        println!(
            "demo: starting OLM (olm and catalog operators) and serving the generated catalog with `opm serve`…"
        );
        let mut olm = crate::olm::Olm::start(&cluster, &tools_dir).await?;
        let out = tempfile::tempdir()?;
        let catalog = crate::olm::generate_catalog(out.path(), &[])?;
        olm.serve_catalog("locust-catalog", &catalog).await?;
        let version = crate::olm::current_version()?;
        let csv = crate::olm::csv_name(&version);
        println!(
            "demo: subscribing to package {} channel stable (Subscription in namespace {})…",
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
            "demo: {csv} Succeeded: OLM installed the CRD (conversion webhook + CA), the webhooks, RBAC, ServiceAccount and Deployment"
        );
        println!(
            "demo: the Deployment's pods are kwok fakes, so the real operator binary runs as a local process under OLM's ServiceAccount and certificate, serving on the webhook Service's address…"
        );
        let server = crate::olm::WebhookServer::start(&cluster, "demo").await?;
        println!(
            "demo: operator serving webhooks on {} and reconciling (log: {})",
            server.address,
            server.process.log_path.display()
        );
        olm_handle = Some((olm, out));
        webhook = Some(server);
        None
    } else {
        println!(
            "demo: installing the CRD (from bundle/) and the operator's RBAC, starting the operator under its ServiceAccount…"
        );
        let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
        let op = OperatorProcess::spawn(
            &cluster,
            &kubeconfig,
            "demo",
            &["--leader-elect=false".into(), "--disable-webhooks".into()],
        )?;
        let ready = op.wait_ready(Duration::from_secs(60)).await?;
        println!(
            "demo: operator ready in {} ms (log: {})",
            ready.as_millis(),
            op.log_path.display()
        );
        Some(op)
    };
    let op: &OperatorProcess = match (&process, &webhook) {
        (Some(op), _) => op,
        (None, Some(w)) => &w.process,
        (None, None) => bail!("demo: no operator started"),
    };

    let client = cluster.admin_client();
    let ns = "default";
    println!(
        "demo: applying operator/samples/demo-locustfile.yaml and operator/samples/locusttest-v2.yaml"
    );
    apply_samples(&client, ns).await?;
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);

    let mut last = String::new();
    let mut running_since: Option<Instant> = None;
    let mut ended = false;
    let deadline = Instant::now() + Duration::from_secs(180) + opts.run_for;
    let final_status = loop {
        if Instant::now() > deadline {
            bail!(
                "demo: the test did not finish in time; operator log:\n{}",
                op.log_tail(30)
            );
        }
        let t = tests.get("demo").await?;
        if let Some(st) = &t.status {
            let l = line(st);
            if l != last {
                println!("  {:>5.1}s  {l}", started.elapsed().as_secs_f64());
                last = l;
            }
            match st.phase {
                Some(Phase::Running) => {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if !ended && since.elapsed() >= opts.run_for {
                        let pods = cluster.job_pods(ns, "demo-master").await?;
                        if let Some(p) = pods.first() {
                            println!(
                                "demo: the nodes are kwok fakes, so no Locust runs; playing the kubelet: master pod {} exits 0",
                                p.name_any()
                            );
                            cluster.complete_pod(ns, &p.name_any(), 0).await?;
                            ended = true;
                        }
                    }
                }
                Some(p) if p.is_terminal() => break st.clone(),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    println!(
        "demo: final status:\n{}",
        serde_yaml::to_string(&final_status)?
    );
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    println!("demo: Events of the LocustTest:");
    for e in events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo"))
    {
        println!(
            "  {:<8} {:<14} {}",
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.note.as_deref().unwrap_or("")
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
    drop(webhook);
    drop(olm_handle);
    cluster.stop();
    println!("demo: done in {:.1}s", started.elapsed().as_secs_f64());
    if final_status.phase != Some(Phase::Succeeded) {
        bail!("demo: the test ended {:?}", final_status.phase);
    }
    Ok(())
}
