//! `bench`: the operator benchmark of issue #6 (`make bench`). Boots fresh
//! local clusters, measures start-up, bursts of N LocustTests against the
//! floor of a plain client, cost and idle behaviour, prints one table, and
//! optionally writes the generated block of `docs/performance.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use olm_tests::bench::{self, BenchOptions};
use olm_tests::operator::workspace_root;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmark the operator on the local control plane (issue #6)"
)]
struct Cli {
    /// Burst sizes (LocustTests created at once), run in this order.
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000")]
    sizes: Vec<usize>,
    /// Measured start-up runs (after one warm-up run).
    #[arg(long, default_value_t = 7)]
    startup_runs: usize,
    /// Seconds of each idle window (empty cluster; largest size finished).
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Seconds to let things settle after the last pod finished and after a restart.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Run target/release/locust-k8s-operator (build it first:
    /// `cargo build --release -p locust-k8s-operator`).
    #[arg(long, conflicts_with = "operator_bin")]
    release: bool,
    /// The operator binary to run (default: target/debug/locust-k8s-operator).
    #[arg(long, value_name = "PATH")]
    operator_bin: Option<PathBuf>,
    /// Requests in flight when creating tests, floor children, and completing pods.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Fake nodes per cluster.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Write the results into this Markdown file, between its bench markers
    /// (created if missing), e.g. docs/performance.md.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Skip the floor (the plain client's cluster): quicker, but no ratios.
    #[arg(long)]
    no_floor: bool,
    /// Copy each cluster's logs (audit log included) and the operators' logs here.
    #[arg(long, value_name = "DIR")]
    keep_logs: Option<PathBuf>,
}

fn operator_bin(cli: &Cli) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = match (&cli.operator_bin, cli.release) {
        (Some(p), _) => p.clone(),
        (None, true) => target.join("release/locust-k8s-operator"),
        (None, false) => target.join("debug/locust-k8s-operator"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it first (`cargo build{} -p locust-k8s-operator`)",
            path.display(),
            if cli.release { " --release" } else { "" }
        );
    }
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// The command line as run, with the program path relative to the workspace.
fn command_line() -> String {
    let root = workspace_root();
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(program) = args.first_mut() {
        let p = PathBuf::from(&*program);
        if let Ok(rel) = p.strip_prefix(&root) {
            *program = rel.display().to_string();
        }
    }
    args.join(" ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    olm_tests::init_tracing("warn");
    let cli = Cli::parse();
    let mut opts = BenchOptions::new(cli.sizes.clone(), operator_bin(&cli)?);
    opts.startup_runs = cli.startup_runs;
    opts.idle = Duration::from_secs(cli.idle_secs);
    opts.settle = Duration::from_secs(cli.settle_secs);
    opts.concurrency = cli.concurrency;
    opts.nodes = cli.nodes;
    opts.keep_logs = cli.keep_logs.clone();
    opts.floor = !cli.no_floor;
    let command = command_line();
    eprintln!("bench: {command}");
    eprintln!("bench: operator {}", opts.operator_bin.display());
    let report = bench::run(&opts, |line| eprintln!("bench: {line}")).await?;
    println!("{}", report.table());
    println!("{}", report.budgets());
    eprintln!("bench: finished in {:.0} s", report.wall.as_secs_f64());
    if let Some(out) = &cli.out {
        let out = if out.is_absolute() {
            out.clone()
        } else {
            std::env::current_dir()?.join(out)
        };
        let existing = std::fs::read_to_string(&out).ok();
        let text = bench::splice_markdown(existing.as_deref(), &report.markdown(&command));
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: wrote {}", out.display());
    }
    Ok(())
}
