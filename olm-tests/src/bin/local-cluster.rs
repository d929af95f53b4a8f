//! `local-cluster up`: boots the local test cluster for a human (or a demo
//! script), prints how to reach it, and tears it down on Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use olm_tests::{Cluster, ClusterOptions, Tools};

#[derive(Parser, Debug)]
#[command(
    name = "local-cluster",
    about = "A real local Kubernetes control plane with kwok nodes and, optionally, a real node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot the cluster and keep it running until Ctrl-C (or SIGTERM).
    Up(UpArgs),
    /// Print the tools directory in use (exit 1 if the tools are not built).
    Tools,
    /// Boot the cluster, start the operator, run the sample LocustTest, tear down.
    Demo(DemoArgs),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Run the operator as a local process instead of installing it through
    /// OLM (the faster development path).
    #[arg(long)]
    operator_process: bool,
    /// Keep the cluster up after the test until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// Number of fake (kwok) nodes.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Also run the real node (kubelet, containerd, kube-proxy, CoreDNS):
    /// pods scheduled there are real containers (needs root and the
    /// images: `make images`).
    #[arg(long)]
    real_node: bool,
    /// Build the tools first if they are not built yet (slow the first time).
    #[arg(long)]
    build: bool,
    /// Also copy the admin kubeconfig here once the cluster is ready (the
    /// file appearing means "ready"; it is removed on shutdown).
    #[arg(long, value_name = "PATH")]
    write_kubeconfig: Option<PathBuf>,
    /// Parent directory for the cluster directory (default: system temp).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Start-up timeout in seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    olm_tests::init_tracing("info");
    match Cli::parse().command {
        Command::Tools => {
            let tools = Tools::locate()?;
            println!("{}", tools.dir().display());
            Ok(())
        }
        Command::Up(args) => up(args).await,
        Command::Demo(args) => {
            let tools = Tools::locate()?;
            olm_tests::demo::run(
                tools,
                olm_tests::demo::DemoOptions {
                    olm: !args.operator_process,
                    keep: args.keep,
                },
            )
            .await
        }
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let tools = if args.build {
        Tools::build()?
    } else {
        Tools::locate()?
    };
    eprintln!("local-cluster: starting (tools: {})", tools.dir().display());
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        nodes: args.nodes,
        real_node: args.real_node,
        startup_timeout: Duration::from_secs(args.timeout),
        base_dir: args.dir,
        ..ClusterOptions::default()
    })
    .await?;
    if let Some(path) = &args.write_kubeconfig {
        std::fs::copy(cluster.kubeconfig_path(), path)
            .with_context(|| format!("copying the kubeconfig to {}", path.display()))?;
    }
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| cluster.kubeconfig_path().to_path_buf());
    println!(
        "local-cluster: ready in {:.1}s: {} with {} kwok node(s){}; logs in {}",
        cluster.startup_duration().as_secs_f64(),
        cluster.api_url(),
        cluster.node_names().len(),
        if args.real_node {
            format!(" and the real node {}", olm_tests::cluster::REAL_NODE_NAME)
        } else {
            String::new()
        },
        cluster.dir().join("logs").display()
    );
    if let Some(pid) = cluster.node_init_pid() {
        println!(
            "local-cluster: the real node's processes live in the PID namespace of pid {pid} (they all end with it)"
        );
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    println!("kubectl get nodes -o wide   # then: kubectl get pods -A");
    println!("local-cluster: press Ctrl-C to stop");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    eprintln!("local-cluster: stopping");
    cluster.stop();
    if let Some(path) = &args.write_kubeconfig {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("local-cluster: stopped");
    Ok(())
}
