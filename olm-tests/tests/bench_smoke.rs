//! The benchmark of `make bench` at N = 20, to keep it working: a burst of
//! 20 LocustTests through the real operator (debug build is fine) against
//! the floor of a plain client, with the API writes counted from the
//! apiserver's audit log. Asserts the write budget per test, zero no-op
//! writes, zero writes while idle or after a restart, exact children, and
//! that the table prints; bounded to 90 s of benchmark time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use olm_tests::bench::{self, BenchOptions, budget};
use olm_tests::operator::operator_binary;

const N: usize = 20;
const BOUND: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke() -> Result<()> {
    let Some(tools) = olm_tests::tools::tools_or_skip("bench_smoke") else {
        return Ok(());
    };
    let mut opts = BenchOptions::new(vec![N], operator_binary()?);
    opts.tools = Some(tools);
    opts.startup_runs = 3;
    opts.idle = Duration::from_secs(5);
    opts.settle = Duration::from_secs(3);

    let started = Instant::now();
    let report = tokio::time::timeout(BOUND, bench::run(&opts, |line| eprintln!("bench: {line}")))
        .await
        .context("the N=20 benchmark exceeded its time bound")??;
    let took = started.elapsed();
    let table = report.table();
    let budgets = report.budgets();
    println!("{table}\n{budgets}");
    eprintln!("bench_smoke: benchmark took {took:?}");

    // The table prints, with its figures.
    for row in [
        "| Figure ",
        &format!("| N={N} "),
        "| burst: first create → all Running, 3 children each",
        "| floor: … and every master pod Running",
        "| writes per test: total (children + status)",
        "| start-up to ready (median of 3)",
        "| idle, empty cluster, 5 s: RSS",
        "| idle, 100 suspended schedules, 5 s: RSS",
        "| operator binary",
    ] {
        ensure!(table.contains(row), "row {row:?} missing from\n{table}");
    }
    ensure!(budgets.contains("| start-up to ready (warm apiserver)"));

    // Suspended schedules cost no write once their status is written.
    let idle = &report.idle_schedules.requests;
    ensure!(
        idle.writes_excluding_leases() == 0,
        "writes while idle over suspended schedules: {idle:?}"
    );

    let size = &report.sizes[0];
    let life = &size.life;
    // Every child created once; the floor's client created exactly 3×N.
    ensure!(size.floor.audited_creates == 3 * N as u64);
    ensure!(
        life.child_creates == 3 * N as u64,
        "{} child creates for {N} tests",
        life.child_creates
    );
    ensure!(size.children.per_test.len() == N);
    size.children.ensure_exact()?;
    // Writes per LocustTest, creation → Succeeded: children + status.
    let per_test = life.object_writes() as f64 / N as f64;
    ensure!(
        per_test <= budget::WRITES_PER_TEST,
        "{per_test:.2} writes per LocustTest (budget {}): {life:?}",
        budget::WRITES_PER_TEST
    );
    ensure!(
        life.other_writes.is_empty(),
        "unexpected writes: {:?}",
        life.other_writes
    );
    // One Event per transition: Created, TestStarted, TestSucceeded.
    ensure!(
        life.event_writes == 3 * N as u64,
        "{} Event writes for {N} tests",
        life.event_writes
    );
    // Nothing is written twice, nothing fails, nothing is written when nothing changed.
    ensure!(
        life.noop_writes == 0,
        "no-op writes: {:?}",
        life.noop_examples
    );
    ensure!(life.failed_writes == 0, "failed writes: {life:?}");
    ensure!(
        report.idle_empty.requests.writes_excluding_leases() == 0,
        "writes while idle on an empty cluster: {:?}",
        report.idle_empty.requests
    );
    ensure!(
        size.restart.requests.writes_excluding_leases() == 0,
        "writes by an operator restarted over {N} finished tests: {:?}",
        size.restart.requests
    );
    let idle = size
        .idle
        .as_ref()
        .context("the largest size measures idle")?;
    ensure!(
        idle.requests.writes_excluding_leases() == 0,
        "writes while idle with {N} finished tests: {:?}",
        idle.requests
    );
    // Watch-only: reads do not grow with the tests (list+watch per kind,
    // plus re-watches), far below one per test.
    ensure!(
        life.reads < N as u64,
        "{} reads for {N} tests: {:?}",
        life.reads,
        life.reads_by_kind
    );
    ensure!(report.startup.runs.len() == 3);
    ensure!(size.to_running > Duration::ZERO && size.floor.masters_running > Duration::ZERO);
    ensure!(took <= BOUND, "the benchmark took {took:?}");
    Ok(())
}
