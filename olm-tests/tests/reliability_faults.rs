//! Faults on a real control plane (issue #7): the API server and etcd
//! restarted under a running operator; the webhook certificate replaced while
//! admission and conversion requests flow; pods of a running test evicted or
//! deleted (spot reclaim); and secret values kept out of logs, Events and
//! status. Every wait is bounded; figures are printed with `FIGURE` so the
//! reliability doc can quote a run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, Phase, v1, v2};
use olm_tests::checks::{self, assert_children_once, lease_holder, wait_phase, wait_readyz};
use olm_tests::operator::{self, OperatorProcess, WebhookCa};
use olm_tests::{Cluster, ClusterOptions, Component, e2e, wait_for};

const LEASE_SECS: u64 = 4;
const RENEW_SECS: u64 = 3;
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

fn leader_args() -> Vec<String> {
    e2e::leader_election_args(LEASE_SECS, RENEW_SECS)
}

async fn complete_master(cluster: &Cluster, ns: &str, test: &str) -> Result<()> {
    let pods = cluster.job_pods(ns, &format!("{test}-master")).await?;
    ensure!(pods.len() == 1, "{test}: {} master pods", pods.len());
    cluster.complete_pod(ns, &pods[0].name_any(), 0).await?;
    Ok(())
}

/// Stops `component` for `down`, checking `/readyz` turns 503 within the
/// probe's period, then restarts it and waits for `/readyz` 200. Returns
/// (time to report the outage, time to report recovery after the restart).
async fn outage(
    cluster: &Cluster,
    op: &OperatorProcess,
    component: Component,
    down: Duration,
) -> Result<(Duration, Duration)> {
    let killed = Instant::now();
    cluster.kill_component(component)?;
    let (noticed, body) = wait_readyz(op, 503, "apiserver unreachable", Duration::from_secs(20))
        .await
        .with_context(|| format!("/readyz during the {component} outage"))?;
    eprintln!("FIGURE {component} down: /readyz 503 after {noticed:?}: {body:?}");
    let left = down.saturating_sub(killed.elapsed());
    tokio::time::sleep(left).await;
    // Still honest at the end of the outage.
    let (code, body) = op.health("/readyz").await?;
    ensure!(
        code == 503,
        "/readyz {code} {body:?} while {component} is down"
    );
    cluster
        .start_component(component, Duration::from_secs(90))
        .await?;
    let restarted = Instant::now();
    let (recovered, _) = wait_readyz(op, 200, "ok", Duration::from_secs(60))
        .await
        .with_context(|| format!("/readyz after {component} restarted"))?;
    eprintln!(
        "FIGURE {component} restarted: /readyz 200 after {recovered:?} (outage {:?})",
        restarted.duration_since(killed)
    );
    Ok((noticed, recovered))
}

/// The API server, then etcd, are killed for longer than the renew
/// deadline while tests run: the operator reports each outage on `/readyz`,
/// stops reconciling (it cannot renew its lease), and — without restarting —
/// takes the lease back, rebuilds its caches and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_and_etcd_restarts() -> Result<()> {
    let (name, ns) = ("rel-restarts", "team-a");
    let options = ClusterOptions::named(name);
    let Some((cluster, kubeconfig, client)) = e2e::operator_cluster_in(name, options, ns).await?
    else {
        return Ok(());
    };
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let mut op = OperatorProcess::spawn(&cluster, &kubeconfig, "a", &leader_args())?;
    let pid = op.pid();

    let result = async {
        op.wait_ready(Duration::from_secs(30)).await?;
        tests
            .create(&PostParams::default(), &checks::sample("before")?)
            .await?;
        wait_phase(&tests, "before", Phase::Running, PHASE_TIMEOUT).await?;

        // Longer than the renew deadline: the lease is lost on the way.
        let down = Duration::from_secs(RENEW_SECS + 5);
        outage(&cluster, &op, Component::Apiserver, down).await?;
        ensure!(op.is_running() && op.pid() == pid, "the operator restarted");
        // The same process leads again.
        let holder = wait_for(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || async { lease_holder(&client).await },
        )
        .await?;
        ensure!(holder.starts_with("operator-a_"), "lease held by {holder}");
        tests
            .create(&PostParams::default(), &checks::sample("after-apiserver")?)
            .await?;
        wait_phase(&tests, "after-apiserver", Phase::Running, PHASE_TIMEOUT).await?;
        complete_master(&cluster, ns, "before").await?;
        wait_phase(&tests, "before", Phase::Succeeded, PHASE_TIMEOUT).await?;

        outage(&cluster, &op, Component::Etcd, down).await?;
        ensure!(op.is_running() && op.pid() == pid, "the operator restarted");
        tests
            .create(&PostParams::default(), &checks::sample("after-etcd")?)
            .await?;
        wait_phase(&tests, "after-etcd", Phase::Running, PHASE_TIMEOUT).await?;
        complete_master(&cluster, ns, "after-apiserver").await?;
        complete_master(&cluster, ns, "after-etcd").await?;
        for t in ["after-apiserver", "after-etcd"] {
            wait_phase(&tests, t, Phase::Succeeded, PHASE_TIMEOUT).await?;
        }
        for t in ["before", "after-apiserver", "after-etcd"] {
            assert_children_once(&client, ns, t).await?;
        }
        let log = op.log();
        let lost = log.matches("leadership lost").count();
        let acquired = log.matches("acquired leader lease").count();
        eprintln!("FIGURE leadership lost {lost}x, acquired {acquired}x over two outages");
        ensure!(
            lost >= 1 && acquired == lost + 1,
            "lost {lost}, acquired {acquired}"
        );
        ensure!(!log.contains("panicked"), "panic in the operator log");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    e2e::with_operator_log(&cluster, &op, 60, result)
}

/// Requests through the API server while the webhook certificate changes:
/// dry-run creates (validating webhook) and v1 lists of v2-stored objects
/// (conversion webhook). Counts (ok, failed) and keeps the first failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client, ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for kind in ["admission", "conversion"] {
            let (stop, ok, failed, errors) = (
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&failed),
                Arc::clone(&errors),
            );
            let v2_api: Api<v2::LocustTest> = Api::namespaced(client.clone(), ns);
            let v1_api: Api<v1::LocustTest> = Api::namespaced(client.clone(), ns);
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                // Bounded by the stop flag and a hard cap.
                while !stop.load(Ordering::SeqCst) && i < 100_000 {
                    i += 1;
                    let res = if kind == "admission" {
                        let pp = PostParams {
                            dry_run: true,
                            ..PostParams::default()
                        };
                        match checks::sample(&format!("dry-{i}")) {
                            Ok(t) => v2_api
                                .create(&pp, &t)
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        }
                    } else {
                        v1_api
                            .list(&ListParams::default())
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|l| {
                                if l.items.is_empty() {
                                    Err("no objects listed".to_owned())
                                } else {
                                    Ok(())
                                }
                            })
                    };
                    match res {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            if let Ok(mut errors) = errors.lock()
                                && errors.len() < 5
                            {
                                errors.push(format!("{kind}: {e}"));
                            }
                        }
                    }
                }
            }));
        }
        Self {
            stop,
            ok,
            failed,
            errors,
            tasks,
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// Points the CRD's conversion webhook and the validating webhook at
/// `ca_bundle`.
async fn set_ca_bundle(client: &Client, ca_bundle: &str) -> Result<()> {
    let bytes = ByteString(ca_bundle.as_bytes().to_vec());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let patch = serde_json::json!({ "spec": { "conversion": { "webhook": { "clientConfig": { "caBundle": bytes } } } } });
    crds.patch(
        "locusttests.locust.io",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mut vwc = vwcs.get(operator::VALIDATING_WEBHOOK).await?;
    for wh in vwc.webhooks.iter_mut().flatten() {
        wh.client_config.ca_bundle = Some(bytes.clone());
    }
    vwcs.replace(operator::VALIDATING_WEBHOOK, &PostParams::default(), &vwc)
        .await?;
    Ok(())
}

/// Certificate reloads the operator logged so far.
fn reloads(op: &OperatorProcess) -> usize {
    op.log()
        .matches("webhook serving certificate reloaded")
        .count()
}

/// Waits until the operator logged `n` certificate reloads in total.
async fn wait_reloads(op: &OperatorProcess, n: usize) -> Result<Duration> {
    let start = Instant::now();
    wait_for(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async { Ok((reloads(op) >= n).then_some(())) },
    )
    .await
    .with_context(|| format!("waiting for certificate reload #{n}"))?;
    Ok(start.elapsed())
}

/// The serving certificate is replaced three ways while admission and
/// conversion requests flow, with no failed request and no restart:
/// a renewal by the same CA swapped in atomically (the kubelet's Secret
/// update), the same written file by file (a torn pair is ignored until
/// whole), and a new CA introduced with an overlapping `caBundle`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_certificate_rotation_under_load() -> Result<()> {
    let (name, tag) = ("rel-certs", "certs");
    let Some((cluster, op, port, _)) = e2e::webhook_cluster(name, name, tag).await? else {
        return Ok(());
    };
    let client = cluster.admin_client();
    let cert_dir = cluster.dir().join("webhook-certs-certs");
    // Re-issue under a CA this test keeps, in the kubelet's layout.
    let ca = WebhookCa::generate()?;
    let (cert, key) = ca.issue()?;
    operator::swap_serving_cert(&cert_dir, &cert, &key)?;
    let pid = op.pid();
    let ns = "wh";
    let result = async {
        let crd = operator::with_local_conversion_webhook(operator::bundle_crd()?, port, &ca.pem());
        operator::install_crd(&client, &crd).await?;
        operator::install_local_validating_webhook(&client, port, &ca.pem()).await?;
        op.wait_ready(Duration::from_secs(30)).await?;
        // The swap above may land before or after the first load: settle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let base = reloads(&op);
        operator::create_namespace(&client, ns, &[]).await?;
        let v2_api: Api<v2::LocustTest> = Api::namespaced(client.clone(), ns);
        wait_for(Duration::from_secs(20), Duration::from_millis(250), || async {
            Ok(Some(v2_api.create(&PostParams::default(), &checks::sample("stored")?).await?))
        })
        .await?;
        let load = Load::start(&client, ns);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (warm_ok, warm_failed) = load.counts();
        ensure!(
            warm_ok > 0 && warm_failed == 0,
            "before any rotation: {warm_ok} ok, {warm_failed} failed: {:?}",
            load.errors()
        );

        // 1. Same CA, atomic swap.
        let (cert, key) = ca.issue()?;
        operator::swap_serving_cert(&cert_dir, &cert, &key)?;
        let t1 = wait_reloads(&op, base + 1).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 2. Same CA, torn write: the certificate first, the key 2.5 s later
        //    (longer than the reload period, so a poll sees the torn pair).
        let (cert, key) = ca.issue()?;
        let dir = cert_dir.join("..data");
        std::fs::write(dir.join("tls.crt"), &cert)?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        std::fs::write(dir.join("tls.key"), &key)?;
        let t2 = wait_reloads(&op, base + 2).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 3. A new CA: trust old and new, swap, then trust only the new one.
        let new_ca = WebhookCa::generate()?;
        set_ca_bundle(&client, &format!("{}{}", ca.pem(), new_ca.pem())).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cert, key) = new_ca.issue()?;
        operator::swap_serving_cert(&cert_dir, &cert, &key)?;
        let t3 = wait_reloads(&op, base + 3).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        set_ca_bundle(&client, &new_ca.pem()).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;

        let errors = load.errors();
        let (ok, failed) = load.stop().await;
        eprintln!(
            "FIGURE certificate rotation under load: {ok} requests ok, {failed} failed; reloads after {t1:?}, {t2:?}, {t3:?}"
        );
        ensure!(failed == 0, "{failed} failed requests: {errors:?}");
        ensure!(ok >= 50, "only {ok} requests went through");
        let mut op = op;
        ensure!(op.is_running() && op.pid() == pid, "the operator restarted");
        ensure!(
            op.log().contains("not reloaded; keeping the previous one"),
            "the torn pair was noticed and skipped"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        cluster.mark_failed();
        bail!("{e:#}");
    }
    Ok(())
}

/// A random token that must never leave the Secret it is stored in.
fn secret_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("s3cr3t-{nanos:x}-{}", std::process::id())
}

/// Spot reclaim and careless deletes of a running test's pods, in a test
/// that takes its credentials from a Secret:
/// - a worker pod evicted (the Eviction API, as a drain or a spot reclaim
///   does; the pod carries `DisruptionTarget`) is replaced by the Job, and the
///   test keeps Running;
/// - a worker pod deleted outright counts as a worker failure, which the
///   worker Job's `backoffLimit` (= replicas) absorbs: it is replaced too;
/// - the master pod evicted fails the test at once, `TestCompleted` reason
///   `MasterLost` naming the eviction (the Job's `FailJob` adds its reason).
///
/// Afterwards, the Secret's value appears nowhere in the operator's log, the
/// Events or any status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_and_deleted_pods_and_secrets() -> Result<()> {
    let (name, ns) = ("rel-evict", "team-b");
    let token = secret_token();
    let options = ClusterOptions::named(name);
    let Some((cluster, kubeconfig, client)) = e2e::operator_cluster_in(name, options, ns).await?
    else {
        return Ok(());
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": "target-credentials" },
                "stringData": { "TARGET_TOKEN": token },
            }))?,
        )
        .await?;
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let op = OperatorProcess::spawn_single_replica(&cluster, &kubeconfig, "evict")?;
    let with_secret = |name: &str| -> Result<LocustTest> {
        let mut t = checks::sample(name)?;
        t.spec.env = Some(serde_json::from_value(serde_json::json!({
            "secretRefs": [{ "name": "target-credentials" }],
            "secretMounts": [{ "name": "target-credentials", "mountPath": "/etc/target" }],
            "variables": [{
                "name": "TOKEN",
                "valueFrom": { "secretKeyRef": { "name": "target-credentials", "key": "TARGET_TOKEN" } },
            }],
        }))?);
        Ok(t)
    };
    let result = async {
        op.wait_ready(Duration::from_secs(30)).await?;
        for name in ["evict-worker", "delete-worker", "evict-master"] {
            tests
                .create(&PostParams::default(), &with_secret(name)?)
                .await?;
        }
        for name in ["evict-worker", "delete-worker", "evict-master"] {
            wait_phase(&tests, name, Phase::Running, PHASE_TIMEOUT).await?;
        }

        // A lost worker pod (evicted, or deleted: a worker failure within the
        // worker Job's backoffLimit = replicas) is replaced; the test keeps
        // running.
        for (test, evict) in [("evict-worker", true), ("delete-worker", false)] {
            let job = format!("{test}-worker");
            let workers = cluster.job_pods(ns, &job).await?;
            ensure!(workers.len() == 2, "{} worker pods", workers.len());
            let victim = workers[0].name_any();
            let what = if evict { "evicted" } else { "deleted" };
            if evict {
                pods.evict(&victim, &EvictParams::default()).await?;
            } else {
                pods.delete(&victim, &DeleteParams::default()).await?;
            }
            let lost_at = Instant::now();
            wait_for(
                Duration::from_secs(60),
                Duration::from_millis(250),
                || async {
                    let now = cluster.job_pods(ns, &job).await?;
                    let running = now
                        .iter()
                        .filter(|p| p.name_any() != victim && olm_tests::cluster::pod_running(p))
                        .count();
                    Ok((running == 2).then_some(()))
                },
            )
            .await
            .with_context(|| format!("the {what} worker is replaced"))?;
            eprintln!(
                "FIGURE {what} worker pod replaced after {:?}",
                lost_at.elapsed()
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            let t = tests.get(test).await?;
            ensure!(
                checks::phase_of(&t) == Some(Phase::Running),
                "after a worker {what}: {:?}",
                t.status
            );
        }
        complete_master(&cluster, ns, "delete-worker").await?;
        wait_phase(&tests, "delete-worker", Phase::Succeeded, PHASE_TIMEOUT).await?;

        // Evicted master: the test fails at once.
        let masters = cluster.job_pods(ns, "evict-master-master").await?;
        pods.evict(&masters[0].name_any(), &EvictParams::default())
            .await?;
        let failed = wait_phase(&tests, "evict-master", Phase::Failed, PHASE_TIMEOUT).await?;
        let text = serde_json::to_string(&failed.status)?;
        let completed = failed
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "TestCompleted"))
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        ensure!(
            completed == "MasterLost" && text.contains("EvictionByEvictionAPI"),
            "the master eviction is named in the status (TestCompleted reason MasterLost): {text}"
        );
        eprintln!("FIGURE evicted master -> Failed: {text}");

        // The evicted-worker test still finishes normally.
        complete_master(&cluster, ns, "evict-worker").await?;
        wait_phase(&tests, "evict-worker", Phase::Succeeded, PHASE_TIMEOUT).await?;
        for name in ["evict-worker", "delete-worker", "evict-master"] {
            assert_children_once(&client, ns, name).await?;
        }

        // The secret's value is nowhere the operator writes.
        let log = op.log();
        ensure!(
            log.len() > 1000,
            "the operator logged ({} bytes)",
            log.len()
        );
        ensure!(
            !log.contains(&token),
            "the secret value is in the operator log"
        );
        let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?;
        ensure!(!events.items.is_empty(), "events were written");
        ensure!(
            !serde_json::to_string(&events.items)?.contains(&token),
            "the secret value is in an Event"
        );
        let all = tests.list(&ListParams::default()).await?;
        ensure!(
            !serde_json::to_string(&all.items)?.contains(&token),
            "the secret value is in a LocustTest"
        );
        // The pods reference the Secret by name only.
        let pod_json = serde_json::to_string(&pods.list(&ListParams::default()).await?.items)?;
        ensure!(pod_json.contains("target-credentials") && !pod_json.contains(&token));
        Ok::<(), anyhow::Error>(())
    }
    .await;
    e2e::with_operator_log(&cluster, &op, 60, result)
}
