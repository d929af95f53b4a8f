//! The operator benchmark (`make bench`): start-up, bursts of N LocustTests
//! against the floor of a plain client, cost (memory, CPU, API requests per
//! test from the apiserver's audit log) and idle behaviour, on the local
//! control plane, with the operator as a process under its own RBAC.
//!
//! Each size N gets two fresh clusters with identical settings: one where a
//! plain client (a ServiceAccount, like the operator) creates the 3×N
//! children directly (the floor), and one where the operator does it. The
//! first operator cluster also measures start-up (several runs, warm
//! apiserver) and an idle operator on an empty cluster; the largest size
//! measures an operator restarted over N finished tests, idle.
//!
//! Everything is bounded in time, and every process (clusters, operators) is
//! killed when its owner is dropped.
//!
//! One concern per file: `sample.rs` reads the machine and its processes
//! (/proc, the operator binary), `audit.rs` reads and counts the apiserver's
//! audit log, `floor.rs` measures the plain client, `operator_run.rs` the
//! operator (run as an [`OperatorProcess`](crate::operator::OperatorProcess)),
//! `results.rs` holds what they measure and `report.rs` renders it.

mod audit;
mod floor;
mod operator_run;
mod report;
mod results;
mod sample;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use kube::Client;
use kube::api::{Api, PostParams};
use locust_operator::api::LocustTest;

pub use audit::{
    ApiCounts, AuditRecord, CreateLatencies, Latency, audit_policy, count_requests, floor_user,
    latency, operator_user, read_audit_log,
};
pub use report::{MARKERS, splice_markdown};
pub use results::{BenchReport, Floor, Idle, Restart, SizeResult, Startup};
pub use sample::{BinaryInfo, LoadSample, Machine, ProcSample, parse_stat_cpu, proc_sample};

use crate::cluster::{AuditOptions, Cluster, ClusterOptions, NodeCapacity, Throughput};
use crate::load;
use crate::operator as op;
use crate::tools::Tools;
use floor::measure_floor;
use operator_run::measure_operator;

/// Namespace the benchmark's LocustTests (or the floor's children) live in.
pub const BENCH_NAMESPACE: &str = "bench";
/// Suspended LocustSchedules the operator idles over (issue #16: the idle
/// figures hold with them).
pub const SUSPENDED_SCHEDULES: usize = 100;
/// ServiceAccount (in [`BENCH_NAMESPACE`]) of the floor's plain client.
pub const FLOOR_ACCOUNT: &str = "bench-floor";

/// The budgets of issue #6.
pub mod budget {
    use std::time::Duration;
    /// Start-up to ready on a warm apiserver.
    pub const STARTUP: Duration = Duration::from_millis(200);
    /// Burst of 1000 to Running, as a multiple of the floor.
    pub const BURST_RATIO: f64 = 1.5;
    /// API writes per LocustTest, creation to Succeeded (children + status).
    pub const WRITES_PER_TEST: f64 = 6.0;
    /// Idle RSS on an empty cluster (MiB).
    pub const IDLE_RSS_MIB: f64 = 16.0;
    /// RSS with 1000 tests and their pods cached (MiB).
    pub const RSS_1000_MIB: f64 = 64.0;
}

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Burst sizes, run in this order.
    pub sizes: Vec<usize>,
    /// Measured start-up runs (after one warm-up run).
    pub startup_runs: usize,
    /// Length of each idle window.
    pub idle: Duration,
    /// Quiet time after the last pod is completed before the life window
    /// closes, and after a restart before its writes are counted.
    pub settle: Duration,
    /// The operator binary to run.
    pub operator_bin: PathBuf,
    /// Requests in flight when the bench creates LocustTests, when the floor
    /// client creates children, and when the harness completes pods.
    pub concurrency: usize,
    /// Fake nodes per cluster.
    pub nodes: usize,
    /// Cluster tools; `None`: [`Tools::locate`].
    pub tools: Option<Tools>,
    /// Copy every cluster's logs (the audit log included) and the operators'
    /// logs into `<dir>/<cluster>/` before the cluster is removed.
    pub keep_logs: Option<PathBuf>,
    /// Measure the floor (default); without it the ratios are not computed.
    pub floor: bool,
}

impl BenchOptions {
    /// Defaults for `sizes` with `operator_bin`: 7 start-up runs, one-minute
    /// idle windows, 5 s settle, 32 requests in flight, 4 nodes.
    pub fn new(sizes: Vec<usize>, operator_bin: PathBuf) -> Self {
        Self {
            sizes,
            startup_runs: 7,
            idle: Duration::from_secs(60),
            settle: Duration::from_secs(5),
            operator_bin,
            concurrency: 32,
            nodes: 4,
            tools: None,
            keep_logs: None,
            floor: true,
        }
    }

    /// Upper bound of one wait for N tests (Running, Succeeded, floor pods).
    fn wait_bound(&self, n: usize) -> Duration {
        Duration::from_secs(120) + Duration::from_millis(500) * u32::try_from(n).unwrap_or(u32::MAX)
    }
}

fn cluster_options(opts: &BenchOptions, n: usize, name: &str) -> ClusterOptions {
    // Two pods per test plus room; requests of 250m CPU / 128Mi per pod.
    let pods_per_node = ((2 * n + 20) * 11 / 10)
        .div_ceil(opts.nodes.max(1))
        .max(250);
    ClusterOptions {
        tools: opts.tools.clone(),
        nodes: opts.nodes,
        node_capacity: NodeCapacity {
            cpu: (pods_per_node / 2 + 32).to_string(),
            memory: format!("{}Gi", pods_per_node / 4 + 256),
            pods: pods_per_node.to_string(),
        },
        throughput: Some(Throughput::high()),
        audit: Some(AuditOptions {
            policy: audit_policy(),
        }),
        name: name.into(),
        ..ClusterOptions::default()
    }
}

async fn bench_namespace(client: &Client) -> Result<()> {
    op::create_namespace(client, BENCH_NAMESPACE, &[]).await
}

fn audit_records(cluster: &Cluster) -> Result<Vec<AuditRecord>> {
    let path = cluster
        .audit_log_path()
        .context("the cluster has no audit log")?;
    read_audit_log(&path)
}

/// Creates and deletes one LocustTest, so the first timed creates do not
/// pay for the apiserver's first use of a new CRD (its handler, schema and
/// CEL rules are set up on first use). Call it before any operator runs.
async fn warm_up_crd(client: &Client) -> Result<()> {
    let api: Api<LocustTest> = Api::namespaced(client.clone(), BENCH_NAMESPACE);
    let name = "warm-up";
    api.create(&PostParams::default(), &load::test_object(name))
        .await
        .context("creating the warm-up LocustTest")?;
    api.delete(name, &Default::default())
        .await
        .context("deleting the warm-up LocustTest")?;
    crate::wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let api = api.clone();
        async move { Ok(api.get_opt(name).await?.is_none().then_some(())) }
    })
    .await
    .context("waiting for the warm-up LocustTest to go")
}

/// Starts a cluster of its own (`name`, sized for `n`), runs `run` on it,
/// marks the cluster failed when `run` failed, and saves its logs.
async fn on_own_cluster<T>(
    opts: &BenchOptions,
    n: usize,
    name: &str,
    run: impl AsyncFnOnce(&Cluster) -> Result<T>,
) -> Result<T> {
    let cluster = Cluster::start(cluster_options(opts, n, name)).await?;
    let result = run(&cluster).await;
    if result.is_err() {
        cluster.mark_failed();
    }
    save_logs(opts, &cluster, name)?;
    result
}

/// Copies the cluster's logs and the operators' logs to
/// [`BenchOptions::keep_logs`]`/<label>/`, when set.
fn save_logs(opts: &BenchOptions, cluster: &Cluster, label: &str) -> Result<()> {
    let Some(dir) = &opts.keep_logs else {
        return Ok(());
    };
    let target = dir.join(label);
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let logs = cluster.dir().join("logs");
    let sources = [logs.as_path(), cluster.dir()];
    for source in sources {
        let entries =
            std::fs::read_dir(source).with_context(|| format!("listing {}", source.display()))?;
        for entry in entries {
            let path = entry?.path();
            let is_log = path.extension().is_some_and(|e| e == "log");
            if path.is_file() && is_log {
                let name = path.file_name().unwrap_or_default();
                std::fs::copy(&path, target.join(name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Runs the whole benchmark; `progress` gets one line per step.
pub async fn run(opts: &BenchOptions, progress: impl Fn(&str)) -> Result<BenchReport> {
    ensure!(!opts.sizes.is_empty(), "no sizes to run");
    ensure!(opts.startup_runs > 0, "at least one start-up run");
    let started = Instant::now();
    let mut report = BenchReport {
        machine: Machine::read(),
        binary: BinaryInfo::read(&opts.operator_bin)?,
        ..BenchReport::default()
    };
    let largest = opts.sizes.iter().copied().max().unwrap_or(0);
    let mut largest_done = false;
    for (i, &n) in opts.sizes.iter().enumerate() {
        progress(&format!("N={n}: floor (plain client, own cluster)"));
        let floor = if opts.floor {
            measure_floor(opts, n)
                .await
                .with_context(|| format!("floor, N={n}"))?
        } else {
            Floor::default()
        };
        progress(&format!(
            "N={n}: floor create-only {:.2} s, masters Running {:.2} s",
            floor.create_only.as_secs_f64(),
            floor.masters_running.as_secs_f64()
        ));
        let last = n == largest && !largest_done;
        largest_done |= last;
        progress(&format!("N={n}: operator (own cluster)"));
        let (mut size, first) = measure_operator(opts, n, i == 0, last)
            .await
            .with_context(|| format!("operator, N={n}"))?;
        size.floor = floor;
        progress(&format!(
            "N={n}: Running {:.2} s ({:.2}x floor), Succeeded {:.2} s after completing",
            size.to_running.as_secs_f64(),
            size.ratio(),
            size.to_succeeded.as_secs_f64()
        ));
        if let Some(f) = first {
            report.startup = f.startup;
            report.idle_empty = f.idle_empty;
            report.idle_schedules = f.idle_schedules;
        }
        report.sizes.push(size);
    }
    report.wall = started.elapsed();
    Ok(report)
}
