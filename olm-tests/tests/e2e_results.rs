//! End to end with REAL Locust on a REAL node: the operator (a process in
//! the cluster's network namespace, under its ServiceAccount) runs a
//! LocustTest whose master and workers are real containers of the Locust
//! image built here (`olm_tests::images::locust_image`) on the real kubelet
//! node, the locustfile from a ConfigMap (`spec.testFiles.configMapRef`),
//! aiming at the HTTP target image behind a Service (`http://target`). The
//! workers reach the master by the master Service's DNS name exactly as the
//! operator renders it (`--master-host=<test>-master`); nothing plays the
//! kubelet.
//!
//! Checked, for a healthy target and for one answering every 4th request
//! with a 500 (`-fail-every 4`):
//! - live numbers in `status.live` while the run is under way, with the
//!   master counting both workers;
//! - `status.result` equals the master's own final statistics, which the test
//!   reads itself from the master pod (`cluster.forward` to its port 8089)
//!   while the master lingers under `--autoquit`;
//! - `Succeeded` when the thresholds hold; `Failed` with `ThresholdsBreached`
//!   and the breach in the message when they do not;
//! - the master container's real exit code from the pod status: 0, and 1
//!   (Locust's `--exit-code-on-error`) when requests failed.
//!
//! Skips without the cluster tools or images, unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use locust_operator::api::status::TestResult;
use locust_operator::api::v2::ThresholdsSpec;
use locust_operator::api::{LocustTest, LocustTestStatus, Phase, condition_type as ct};
use locust_operator::resources::names;
use locust_operator::stats;
use olm_tests::fixture::{self, RealNodeFixture, locust_spec};
use olm_tests::locust::LOCUSTFILE;
use olm_tests::wait_for;
use serde_json::json;

const T: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(300);
const NAME: &str = "results";

/// What one scenario ended with: the final object, the master's final result
/// as the test read it, the master container's exit code, and the worker
/// count the master reported while running.
struct Outcome {
    test: LocustTest,
    own: TestResult,
    exit_code: Option<i32>,
    workers_seen: Option<i64>,
}

/// Runs one test in namespace `ns` against a target failing every
/// `fail_every`-th request (when set).
async fn scenario(
    fx: &RealNodeFixture,
    ns: &str,
    fail_every: Option<u64>,
    th: &ThresholdsSpec,
) -> Result<Outcome> {
    fx.namespace(ns, &[]).await?;
    fx.start_target(ns, fail_every).await?;
    fx.locustfile(ns, "locustfile", LOCUSTFILE).await?;
    let spec = locust_spec(
        "locustfile",
        "8s",
        json!({
            "master": {"command": format!(
                "locust -f {} --host http://{} --users 5 --spawn-rate 5 --run-time 8s",
                fixture::LOCUSTFILE_PATH,
                fixture::TARGET_SERVICE
            )},
            "thresholds": th,
        }),
    );
    fx.create_test(ns, NAME, spec).await?;

    let masters = fx.wait_role_running(ns, NAME, "master", 1, T).await?;
    let workers = fx.wait_role_running(ns, NAME, "worker", 2, T).await?;
    for w in &workers {
        let args = fixture::container_args(w);
        let want = format!("--master-host={}", names::service_name(NAME));
        ensure!(
            args.contains(&want),
            "{ns}: worker args {args:?} lack {want}"
        );
    }
    let master_pod = kube::ResourceExt::name_any(&masters[0]);
    let ip = fixture::pod_ip(&masters[0])?;
    let forward = fx.cluster.forward(SocketAddr::new(ip, 8089))?;
    let web = forward.host_addr();

    // While running, the operator reports live numbers from the master, and
    // the master has both workers (connected through the Service's name).
    let tests = fx.tests(ns);
    let live = wait_for(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let t = tests.get(NAME).await?;
            Ok(t.status
                .as_ref()
                .and_then(|s| s.live.clone())
                .filter(|l| l.state.as_deref() == Some("running")))
        },
    )
    .await
    .with_context(|| format!("{ns}: live stats"))?;
    ensure!(live.requests_per_second.is_some(), "{live:?}");
    let running = stats::read_stats(web, "", stats::DEFAULT_TIMEOUT).await?;
    let workers_seen = running.worker_count;

    // The test reads the stopped master itself, for comparison...
    let first = wait_for(Duration::from_secs(60), POLL, || async {
        Ok(stats::read_master(web, "", stats::DEFAULT_TIMEOUT)
            .await
            .ok()
            .and_then(|r| r.final_result))
    })
    .await
    .with_context(|| format!("{ns}: the run never stopped"))?;
    // ...and keeps reading while the master lingers (late worker reports may
    // land right after `stopped`): the last read before its container ends
    // is the master's final word.
    let own = std::sync::Mutex::new(first);
    let (own_ref, pods, master_pod) = (&own, &fx.pods(ns), &master_pod);
    let exit_code = wait_for(Duration::from_secs(60), POLL, || async move {
        if let Ok(r) = stats::read_master(web, "", stats::DEFAULT_TIMEOUT).await
            && let Some(result) = r.final_result
        {
            *own_ref
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = result;
        }
        let pod = pods.get(master_pod).await?;
        Ok(fixture::exit_code(&pod).map(Some))
    })
    .await
    .with_context(|| format!("{ns}: the master container never ended"))?;
    let own = own
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    drop(forward);

    let test = fx.wait_terminal(ns, NAME, T).await?;
    Ok(Outcome {
        test,
        own,
        exit_code,
        workers_seen,
    })
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

/// What both scenarios show: the master counted both workers and exited
/// with `exit_code` (Locust exits 1 when requests failed), the test ended
/// in `phase`, and `status.result` is the master's final statistics.
fn check_ended(
    o: Result<Outcome>,
    scenario: &str,
    exit_code: i32,
    phase: Phase,
) -> Result<(LocustTestStatus, TestResult)> {
    let o = o.with_context(|| format!("{scenario} scenario"))?;
    let st = o.test.status.context("status")?;
    ensure!(
        o.workers_seen == Some(2),
        "{scenario}: the master counted {:?} workers",
        o.workers_seen
    );
    ensure!(
        o.exit_code == Some(exit_code),
        "{scenario}: master exit code {:?}, expected {exit_code}",
        o.exit_code
    );
    ensure!(st.phase == Some(phase), "{scenario}: {st:?}");
    let r = st.result.clone().context("status.result")?;
    ensure!(
        same(&r, &o.own),
        "{scenario}: status.result {r:?} != master's final stats {:?}",
        o.own
    );
    Ok((st, r))
}

fn check(pass: Result<Outcome>, breach: Result<Outcome>) -> Result<()> {
    let (_, r) = check_ended(pass, "passing", 0, Phase::Succeeded)?;
    ensure!(
        r.total_requests.unwrap_or(0) > 0 && r.failed_requests == Some(0),
        "{r:?}"
    );
    eprintln!(
        "passing run: Succeeded, master exit 0, {} requests, p95 {:?} ms",
        r.total_requests.unwrap_or(0),
        r.p95_response_time
    );

    let (st, r) = check_ended(breach, "breaching", 1, Phase::Failed)?;
    ensure!(r.fail_ratio.unwrap_or(0.0) > 0.01, "{r:?}");
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == ct::TEST_COMPLETED)
        .context("TestCompleted")?;
    ensure!(c.reason == "ThresholdsBreached", "{c:?}");
    ensure!(
        c.message.starts_with("thresholds breached: fail ratio 0.") && c.message.contains("> 0.01"),
        "{}",
        c.message
    );
    eprintln!(
        "breaching run: Failed/ThresholdsBreached, master exit 1, fail ratio {:?}: {}",
        r.fail_ratio, c.message
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_real_locust_results() -> Result<()> {
    let th = ThresholdsSpec {
        max_fail_ratio: Some(0.01),
        max_p95_response_time: Some(5000.0),
        ..Default::default()
    };
    let (pass_ns, breach_ns) = ("e2e-results-pass", "e2e-results-breach");
    let test = "operator_reads_real_locust_results";
    RealNodeFixture::run(
        test,
        "e2e-results",
        &[],
        &[pass_ns, breach_ns],
        async |fx| {
            let (pass, breach) = tokio::join!(
                scenario(fx, pass_ns, None, &th),
                scenario(fx, breach_ns, Some(4), &th),
            );
            check(pass, breach)
        },
    )
    .await
}
