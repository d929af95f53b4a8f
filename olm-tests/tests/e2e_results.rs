//! End to end with REAL Locust: the operator (a process, under its
//! ServiceAccount) reads a real Locust master's statistics over the master
//! pod's IP and writes them to the status, then applies the thresholds.
//!
//! The harness is the kubelet: once kwok shows the master and worker pods
//! running (with loopback pod IPs from 127.128.0.0/16), the test starts a real
//! master bound to the master pod's IP (ports 5557 and 8089) and two real
//! workers pointed at it, with the command lines and environment of the Jobs
//! the operator created (host mapping as in `olm_tests::locust`). When the
//! processes exit, the harness completes the pods with their real exit codes.
//!
//! Checked: `status.result` equals the master's final statistics (read by the
//! test itself while the master lingers under `--autoquit`), `Succeeded` when
//! the thresholds hold, `Failed` with `ThresholdsBreached` when they do not.
//!
//! Skips without the cluster tools or Locust, unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use locust_operator::api::status::TestResult;
use locust_operator::api::v2::{LocustTest, LocustTestSpec, ThresholdsSpec};
use locust_operator::api::{Phase, condition_type as ct};
use locust_operator::resources::{labels, names};
use locust_operator::stats;
use olm_tests::locust::{self, LOCUSTFILE, Target};
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;

const T: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

fn test_object(name: &str, dir: &Path, target: SocketAddr, th: ThresholdsSpec) -> LocustTest {
    let locustfile = dir.join("locustfile.py");
    let spec: LocustTestSpec = serde_json::from_value(json!({
        "image": format!("locustio/locust:{}", locust::locust_version()),
        // Autoquit (15 s) exceeds the operator's stats interval (10 s), so the
        // operator reads the stopped run before the master exits.
        "master": {
            "command": format!(
                "locust -f {} --host http://{target} --users 5 --spawn-rate 5 --run-time 8s",
                locustfile.display()
            ),
            "autoquit": {"enabled": true, "timeout": 15}
        },
        "worker": {"command": format!("locust -f {}", locustfile.display()), "replicas": 2},
        "thresholds": th,
    }))
    .unwrap();
    LocustTest::new(name, spec)
}

/// Runs one test; returns its final object and the master's final result as
/// the test itself read it.
async fn scenario(
    cluster: &Cluster,
    bin: &Path,
    ns: &str,
    fail_every: Option<u64>,
    th: ThresholdsSpec,
) -> Result<(LocustTest, TestResult, Option<i32>)> {
    let client = cluster.admin_client();
    operator::create_namespace(&client, ns, &[]).await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("locustfile.py"), LOCUSTFILE)?;
    let target = Target::start(fail_every).await?;
    let name = "results";
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    tests
        .create(
            &PostParams::default(),
            &test_object(name, dir.path(), target.addr, th),
        )
        .await?;

    let sel = |component: &str| {
        format!(
            "{}={},{}={component}",
            labels::LABEL_TEST_NAME,
            names::label_value(name),
            labels::LABEL_COMPONENT
        )
    };
    let masters = cluster
        .wait_for_running_pods(ns, &sel("master"), 1, T)
        .await?;
    let workers = cluster
        .wait_for_running_pods(ns, &sel("worker"), 2, T)
        .await?;
    let master_pod = &masters[0];
    let ip: IpAddr = master_pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .context("master pod IP")?
        .parse()?;
    ensure!(ip.is_loopback(), "pod IP {ip} is not loopback");

    // The commands of the Jobs the operator created.
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let master_cmd = locust::rendered_command(&jobs.get(&names::master_job_name(name)).await?)?;
    let worker_cmd = locust::rendered_command(&jobs.get(&names::worker_job_name(name)).await?)?;
    let replace: BTreeMap<String, String> = [(
        format!("--master-host={}", names::service_name(name)),
        format!("--master-host={ip}"),
    )]
    .into();
    let mut m = locust::spawn(
        bin,
        &master_cmd,
        &BTreeMap::new(),
        &locust::master_bind_args(ip),
        dir.path(),
        dir.path().join("master.log"),
    )?;
    let mut ws = Vec::new();
    for i in 0..2 {
        ws.push(locust::spawn(
            bin,
            &worker_cmd,
            &replace,
            &[],
            dir.path(),
            dir.path().join(format!("worker-{i}.log")),
        )?);
    }

    // While running, the operator reports live numbers from the master.
    let live = wait_for(Duration::from_secs(40), POLL, || async {
        let t = tests.get(name).await?;
        Ok(t.status
            .as_ref()
            .and_then(|s| s.live.clone())
            .filter(|l| l.state.as_deref() == Some("running")))
    })
    .await
    .with_context(|| format!("{ns}: live stats; master log:\n{}", m.output()))?;
    ensure!(live.requests_per_second.is_some(), "{live:?}");

    // The test reads the stopped master itself, for comparison.
    let web = SocketAddr::new(ip, 8089);
    let deadline = Instant::now() + Duration::from_secs(30);
    let own = loop {
        if Instant::now() > deadline {
            bail!("{ns}: run never stopped; master log:\n{}", m.output());
        }
        if let Ok(r) = stats::read_master(web, "", stats::DEFAULT_TIMEOUT).await
            && let Some(result) = r.final_result
        {
            break result;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // Late worker reports may still land right after `stopped`: keep reading
    // until the master exits; the last read is the master's final word.
    let mut own = own;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && m.child.try_wait()?.is_none() {
        if let Ok(r) = stats::read_master(web, "", stats::DEFAULT_TIMEOUT).await
            && let Some(result) = r.final_result
        {
            own = result;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Kubelet stand-in: the processes exit, the pods end with their exit codes.
    let status = m.wait(Duration::from_secs(40)).await?;
    let mut worker_codes = Vec::new();
    for w in &mut ws {
        worker_codes.push(w.wait(Duration::from_secs(20)).await?.code().unwrap_or(1));
    }
    for (pod, code) in workers.iter().zip(worker_codes) {
        cluster.complete_pod(ns, &pod.name_any(), code).await?;
    }
    let code = status.code();
    cluster
        .complete_pod(ns, &master_pod.name_any(), code.unwrap_or(137))
        .await?;

    let done = wait_for(T, POLL, || async {
        let t = tests.get(name).await?;
        Ok(t.status
            .as_ref()
            .is_some_and(|s| s.phase.is_some_and(Phase::is_terminal))
            .then_some(t))
    })
    .await
    .with_context(|| format!("{ns}: terminal phase"))?;
    Ok((done, own, code))
}

/// Equal results: counts and state exactly, times and rates to 1e-12 relative
/// (serde_json's default float parser may be 1 ulp off after the API round trip).
fn same(a: &TestResult, b: &TestResult) -> bool {
    let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    };
    a.total_requests == b.total_requests
        && a.failed_requests == b.failed_requests
        && a.state == b.state
        && close(a.fail_ratio, b.fail_ratio)
        && close(a.average_response_time, b.average_response_time)
        && close(a.median_response_time, b.median_response_time)
        && close(a.p90_response_time, b.p90_response_time)
        && close(a.p95_response_time, b.p95_response_time)
        && close(a.p99_response_time, b.p99_response_time)
        && close(a.max_response_time, b.max_response_time)
        && close(a.requests_per_second, b.requests_per_second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_real_locust_results() -> Result<()> {
    let Some(tools) = olm_tests::tools::tools_or_skip("operator_reads_real_locust_results") else {
        return Ok(());
    };
    let Some(bin) = locust::ensure_locust().await? else {
        return Ok(());
    };
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        name: "e2e-results".into(),
        ..ClusterOptions::default()
    })
    .await?;
    let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
    let op = OperatorProcess::spawn(
        &cluster,
        &kubeconfig,
        "results",
        &["--leader-elect=false".into(), "--disable-webhooks".into()],
    )?;
    op.wait_ready(Duration::from_secs(30)).await?;

    let th = ThresholdsSpec {
        max_fail_ratio: Some(0.01),
        max_p95_response_time: Some(5000.0),
        ..Default::default()
    };
    let (pass, breach) = tokio::join!(
        scenario(&cluster, &bin, "e2e-results-pass", None, th.clone()),
        scenario(&cluster, &bin, "e2e-results-breach", Some(4), th.clone()),
    );
    let result = (|| -> Result<()> {
        let (t, own, code) = pass.context("passing scenario")?;
        let st = t.status.context("status")?;
        ensure!(code == Some(0), "master exit code {code:?}");
        ensure!(st.phase == Some(Phase::Succeeded), "{st:?}");
        let r = st.result.context("status.result")?;
        ensure!(
            same(&r, &own),
            "status.result {r:?} != master's final stats {own:?}"
        );
        ensure!(
            r.total_requests.unwrap_or(0) > 0 && r.failed_requests == Some(0),
            "{r:?}"
        );

        let (t, own, code) = breach.context("breaching scenario")?;
        let st = t.status.context("status")?;
        ensure!(
            code == Some(1),
            "Locust exits 1 on failed requests: {code:?}"
        );
        ensure!(st.phase == Some(Phase::Failed), "{st:?}");
        let r = st.result.clone().context("status.result")?;
        ensure!(
            same(&r, &own),
            "status.result {r:?} != master's final stats {own:?}"
        );
        ensure!(r.fail_ratio.unwrap_or(0.0) > 0.01, "{r:?}");
        let c = st
            .conditions
            .iter()
            .find(|c| c.type_ == ct::TEST_COMPLETED)
            .context("TestCompleted")?;
        ensure!(c.reason == "ThresholdsBreached", "{c:?}");
        ensure!(
            c.message.starts_with("thresholds breached: fail ratio 0.")
                && c.message.contains("> 0.01"),
            "{}",
            c.message
        );
        Ok(())
    })();
    if result.is_err() {
        eprintln!("operator log tail:\n{}", op.log_tail(80));
    }
    result
}
