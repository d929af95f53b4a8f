//! Test tooling for the Locust Kubernetes Operator.
//!
//! - [`cluster`]: a real local Kubernetes control plane (etcd, kube-apiserver,
//!   kube-controller-manager, kube-scheduler) with kwok-simulated nodes, started
//!   as child processes from the pinned binaries that `tools/build.sh` builds;
//! - [`tools`]: locating those binaries (and deciding whether a test may skip
//!   when they are missing);
//! - [`wait`]: the bounded polling helper every test uses;
//! - [`e2e`] and [`fixture`]: what the end-to-end tests start with, on kwok
//!   nodes and on the real node;
//! - [`yaml`]: every YAML read and write, through the operator's helpers.
//!
//! This crate is test tooling: it uses `anyhow` for errors and is not shipped.

pub mod cluster;
pub mod demo;
pub mod images;
pub mod tools;
pub mod wait;

pub use cluster::{Cluster, ClusterOptions, Component, ControlPlane};
pub use tools::Tools;
pub use wait::wait_for;

pub mod bench;
pub mod checks;
pub mod corpus;
pub mod e2e;
pub mod fixture;
pub mod helm;
pub mod load;
pub mod locust;
pub mod metrics_client;
pub mod objects;
pub mod olm;
pub mod operator;
pub mod registry;
pub mod yaml;

/// Sends the logs of this crate's binaries (`local-cluster`, `bench`) to
/// stderr, filtered by `RUST_LOG`, else by `default_filter`.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
}
