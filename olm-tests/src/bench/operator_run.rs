//! The operator's clusters: start-up, idle, the burst of N LocustTests to
//! Running and Succeeded, and a restart over the finished tests.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::jiff::Timestamp;
use locust_operator::api::Phase;
use locust_operator::resources::labels;

use super::sample::LoadMeter;
use super::{
    BENCH_NAMESPACE, BenchOptions, CreateLatencies, Floor, Idle, Restart, SUSPENDED_SCHEDULES,
    SizeResult, Startup, audit_records, bench_namespace, count_requests, on_own_cluster,
    operator_user, proc_sample, warm_up_crd,
};
use crate::cluster::Cluster;
use crate::load;
use crate::operator::{self as op, OperatorCommand, OperatorProcess};

/// The operator binary as a benchmark subject: production logging (no
/// `RUST_LOG`), leader election on, webhooks off, its log in the cluster
/// directory.
fn bench_operator(
    cluster: &Cluster,
    opts: &BenchOptions,
    kubeconfig: &Path,
    tag: &str,
) -> Result<OperatorProcess> {
    let args = [
        "--leader-elect=true".to_owned(),
        "--disable-webhooks".to_owned(),
    ];
    OperatorProcess::start(
        cluster,
        &OperatorCommand {
            bin: opts.operator_bin.clone(),
            kubeconfig,
            tag,
            args: &args,
            wrapper: &[],
            rust_log: None,
        },
    )
}

fn running_pid(operator: &OperatorProcess) -> Result<u32> {
    operator.pid().context("the operator is not running")
}

async fn measure_startup(
    opts: &BenchOptions,
    cluster: &Cluster,
    kubeconfig: &Path,
) -> Result<Startup> {
    let mut startup = Startup::default();
    // One warm-up run (creates the Lease, warms the apiserver's caches).
    for run in 0..=opts.startup_runs {
        let mut operator = bench_operator(cluster, opts, kubeconfig, &format!("startup-{run}"))?;
        let took = operator.wait_synced(Duration::from_secs(60)).await?;
        if run > 0 {
            startup.runs.push(took);
        }
        // SIGTERM releases the lease, so the next run need not wait for it.
        match operator.terminate() {
            Some(status) if status.success() => {}
            other => bail!(
                "the operator did not exit cleanly on SIGTERM ({other:?}); log:\n{}",
                operator.log_tail(30)
            ),
        }
    }
    Ok(startup)
}

async fn measure_idle(
    cluster: &Cluster,
    operator: &OperatorProcess,
    tests: usize,
    window: Duration,
) -> Result<Idle> {
    let from = Timestamp::now();
    let start = proc_sample(running_pid(operator)?)?;
    tokio::time::sleep(window).await;
    let end = proc_sample(running_pid(operator)?)?;
    let to = Timestamp::now();
    let records = audit_records(cluster)?;
    Ok(Idle {
        tests,
        window,
        start,
        end,
        requests: count_requests(&records, &operator_user(), from, to),
    })
}

/// What only the first operator cluster measures.
pub(super) struct FirstCluster {
    pub(super) startup: Startup,
    pub(super) idle_empty: Idle,
    pub(super) idle_schedules: Idle,
}

/// Creates [`SUSPENDED_SCHEDULES`] suspended LocustSchedules (the sample's
/// template), starts an operator over them, lets it write their first status,
/// measures it idle, and deletes them again.
async fn measure_idle_schedules(
    opts: &BenchOptions,
    cluster: &Cluster,
    kubeconfig: &Path,
) -> Result<Idle> {
    use kube::api::{Api, DeleteParams, ListParams, PostParams};
    use locust_operator::api::LocustSchedule;
    let schedules: Api<LocustSchedule> = Api::namespaced(cluster.admin_client(), BENCH_NAMESPACE);
    let sample = op::workspace_root().join("operator/samples/locustschedule.yaml");
    let mut schedule: LocustSchedule = crate::yaml::from_str(&std::fs::read_to_string(&sample)?)
        .with_context(|| format!("reading {}", sample.display()))?;
    schedule.spec.suspend = true;
    for i in 0..SUSPENDED_SCHEDULES {
        schedule.metadata.name = Some(format!("s-{i:03}"));
        schedules.create(&PostParams::default(), &schedule).await?;
    }
    let mut operator = bench_operator(cluster, opts, kubeconfig, "idle-schedules")?;
    operator.wait_synced(Duration::from_secs(60)).await?;
    // Each schedule gets its first status; then nothing is due.
    let written = crate::wait::wait_for(opts.settle * 6, Duration::from_millis(250), || async {
        let all = schedules.list(&ListParams::default()).await?.items;
        Ok(all.iter().all(|s| s.status.is_some()).then_some(()))
    })
    .await
    .map_err(|e| e.context(format!("operator log:\n{}", operator.log_tail(20))));
    written?;
    tokio::time::sleep(opts.settle.min(Duration::from_secs(2))).await;
    let idle = measure_idle(cluster, &operator, 0, opts.idle).await?;
    operator.terminate();
    schedules
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    Ok(idle)
}

pub(super) async fn measure_operator(
    opts: &BenchOptions,
    n: usize,
    first: bool,
    last: bool,
) -> Result<(SizeResult, Option<FirstCluster>)> {
    let name = format!("bench-op-{n}");
    on_own_cluster(opts, n, &name, async |c| {
        operator_run(opts, c, n, first, last).await
    })
    .await
}

async fn operator_run(
    opts: &BenchOptions,
    cluster: &Cluster,
    n: usize,
    first: bool,
    last: bool,
) -> Result<(SizeResult, Option<FirstCluster>)> {
    let admin = cluster.admin_client();
    let kubeconfig = op::install_operator_prereqs(cluster).await?;
    bench_namespace(&admin).await?;
    warm_up_crd(&admin).await?;

    let first_cluster = if first {
        let startup = measure_startup(opts, cluster, &kubeconfig).await?;
        let mut operator = bench_operator(cluster, opts, &kubeconfig, "idle")?;
        operator.wait_synced(Duration::from_secs(60)).await?;
        tokio::time::sleep(opts.settle.min(Duration::from_secs(2))).await;
        let idle_empty = measure_idle(cluster, &operator, 0, opts.idle).await?;
        operator.terminate();
        let idle_schedules = measure_idle_schedules(opts, cluster, &kubeconfig).await?;
        Some(FirstCluster {
            startup,
            idle_empty,
            idle_schedules,
        })
    } else {
        None
    };

    let life_start = Timestamp::now();
    let mut operator = bench_operator(cluster, opts, &kubeconfig, "burst")?;
    operator.wait_synced(Duration::from_secs(60)).await?;
    let names = load::test_names("t", n);
    let c = opts.concurrency;

    let burst_start = Timestamp::now();
    // Burst: N creates at once, until all are Running.
    let meter = LoadMeter::start(cluster, Some(running_pid(&operator)?));
    let (created, running) = tokio::join!(
        load::create_tests(&admin, BENCH_NAMESPACE, &names, c),
        load::wait_all_phase(
            &admin,
            BENCH_NAMESPACE,
            &names,
            Phase::Running,
            opts.wait_bound(n)
        ),
    );
    let create_tests = created?;
    let to_running = running
        .map_err(|e| e.context(format!("operator log:\n{}", operator.log_tail(20))))?
        .max(create_tests);
    let burst_load = meter.finish();
    let burst_end = Timestamp::now();
    let at_running = proc_sample(running_pid(&operator)?)?;
    let children = load::children_report(&admin, BENCH_NAMESPACE).await?;
    children.ensure_exact()?;
    ensure!(
        children.per_test.len() == n,
        "{} LocustTests, expected {n}",
        children.per_test.len()
    );

    // Complete the masters: every test Succeeded.
    let master = format!("{}=master", labels::LABEL_COMPONENT);
    let started = Instant::now();
    let complete = async {
        let count = load::complete_pods(cluster, BENCH_NAMESPACE, &master, c).await?;
        ensure!(count == n, "completed {count} master pods, expected {n}");
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (completed, succeeded) = tokio::join!(
        complete,
        load::wait_all_phase(
            &admin,
            BENCH_NAMESPACE,
            &names,
            Phase::Succeeded,
            opts.wait_bound(n)
        ),
    );
    let completions_done = completed?;
    let to_succeeded = succeeded?.max(completions_done);
    // The workers end too (Locust workers quit with their master).
    let worker = format!("{}=worker", labels::LABEL_COMPONENT);
    load::complete_pods(cluster, BENCH_NAMESPACE, &worker, c).await?;
    tokio::time::sleep(opts.settle).await;
    let after = proc_sample(running_pid(&operator)?)?;
    let records = audit_records(cluster)?;
    let life = count_requests(&records, &operator_user(), life_start, Timestamp::now());
    let creates = CreateLatencies::measure(&records, &operator_user(), burst_start, burst_end);

    // Restart over N finished tests: start-up, and nothing to write.
    operator.terminate();
    drop(operator);
    let restart_start = Timestamp::now();
    let mut restarted = bench_operator(cluster, opts, &kubeconfig, "restart")?;
    let restart_startup = restarted.wait_synced(Duration::from_secs(60)).await?;
    tokio::time::sleep(opts.settle).await;
    let restart = Restart {
        startup: restart_startup,
        sample: proc_sample(running_pid(&restarted)?)?,
        requests: count_requests(
            &audit_records(cluster)?,
            &operator_user(),
            restart_start,
            Timestamp::now(),
        ),
    };
    let idle = if last {
        Some(measure_idle(cluster, &restarted, n, opts.idle).await?)
    } else {
        None
    };
    let children = load::children_report(&admin, BENCH_NAMESPACE).await?;
    children.ensure_exact()?;
    restarted.terminate();

    Ok((
        SizeResult {
            n,
            floor: Floor::default(),
            create_tests,
            to_running,
            to_succeeded,
            completions_done,
            children,
            burst_load,
            creates,
            at_running,
            after,
            life,
            restart,
            idle,
        },
        first_cluster,
    ))
}
