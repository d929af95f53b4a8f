//! The kwok end-to-end fixture: the preamble the `e2e_*`, `reliability_*`
//! and `rbac_ablation` tests share, and how they fail.
//!
//! - [`kwok_cluster`]: the cluster tools located (or the test skipped) and a
//!   local cluster on kwok nodes, named after the test;
//! - [`operator_cluster`]: the same with the operator's prerequisites
//!   installed (the bundle's CRD without its conversion webhook, the RBAC,
//!   the ServiceAccount) and a kubeconfig for the ServiceAccount, ready for
//!   [`OperatorProcess::spawn`];
//! - [`webhook_cluster`]: a kwok cluster with the operator serving its
//!   webhooks on 127.0.0.1, for the tests that register them;
//! - [`admin_namespace`]: a namespace for the test's objects;
//! - [`with_operator_log`]: a failed scenario marks the cluster failed (kept
//!   with `LOCUST_KEEP_CLUSTER=1`) and carries the operator's log tail.
//!
//! The real-node fixture is [`crate::fixture`].

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use kube::Client;

use crate::cluster::{Cluster, ClusterOptions};
use crate::operator::{self, LocalWebhookOperator, OperatorProcess};
use crate::tools::tools_or_skip;

/// Locates the cluster tools (`Ok(None)`: skip `test`, see
/// [`tools_or_skip`]) and starts a kwok cluster named `name` with the
/// default options.
pub async fn kwok_cluster(test: &str, name: &str) -> Result<Option<Cluster>> {
    kwok_cluster_with(test, ClusterOptions::named(name)).await
}

/// Like [`kwok_cluster`], with `options` (their `tools` are the located
/// ones).
pub async fn kwok_cluster_with(test: &str, options: ClusterOptions) -> Result<Option<Cluster>> {
    let Some(tools) = tools_or_skip(test) else {
        return Ok(None);
    };
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        ..options
    })
    .await?;
    Ok(Some(cluster))
}

/// [`kwok_cluster`] with the operator's prerequisites installed
/// ([`operator::install_operator_prereqs`]); the cluster and the
/// kubeconfig of the operator's ServiceAccount.
pub async fn operator_cluster(test: &str, name: &str) -> Result<Option<(Cluster, PathBuf)>> {
    operator_cluster_with(test, ClusterOptions::named(name)).await
}

/// Like [`operator_cluster`], with `options` (see [`kwok_cluster_with`]).
pub async fn operator_cluster_with(
    test: &str,
    options: ClusterOptions,
) -> Result<Option<(Cluster, PathBuf)>> {
    let Some(cluster) = kwok_cluster_with(test, options).await? else {
        return Ok(None);
    };
    let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
    Ok(Some((cluster, kubeconfig)))
}

/// [`operator_cluster_with`] and namespace `ns` in it: the cluster, the
/// operator's kubeconfig and the admin client.
pub async fn operator_cluster_in(
    test: &str,
    options: ClusterOptions,
    ns: &str,
) -> Result<Option<(Cluster, PathBuf, Client)>> {
    let Some((cluster, kubeconfig)) = operator_cluster_with(test, options).await? else {
        return Ok(None);
    };
    let client = admin_namespace(&cluster, ns).await?;
    Ok(Some((cluster, kubeconfig, client)))
}

/// Creates namespace `ns` in `cluster`; returns the admin client.
pub async fn admin_namespace(cluster: &Cluster, ns: &str) -> Result<Client> {
    let client = cluster.admin_client();
    operator::create_namespace(&client, ns, &[]).await?;
    Ok(client)
}

/// [`kwok_cluster`] with the operator serving its webhooks on 127.0.0.1
/// ([`operator::start_local_webhook_operator`], log tag `tag`), not yet
/// waited for: the cluster, the operator, its webhook port and the CA
/// (PEM) of its serving certificate.
pub async fn webhook_cluster(
    test: &str,
    name: &str,
    tag: &str,
) -> Result<Option<(Cluster, OperatorProcess, u16, String)>> {
    let Some(cluster) = kwok_cluster(test, name).await? else {
        return Ok(None);
    };
    let LocalWebhookOperator { process, port, ca } =
        operator::start_local_webhook_operator(&cluster, tag).await?;
    Ok(Some((cluster, process, port, ca)))
}

/// The operator's arguments for leader election with short timings:
/// `--leader-elect=true --disable-webhooks`, the lease duration and renew
/// deadline given (seconds), a 500 ms retry period.
pub fn leader_election_args(lease_secs: u64, renew_secs: u64) -> Vec<String> {
    vec![
        "--leader-elect=true".into(),
        "--disable-webhooks".into(),
        format!("--lease-duration={lease_secs}s"),
        format!("--renew-deadline={renew_secs}s"),
        "--retry-period=500ms".into(),
    ]
}

/// `result`; when it is an error, the cluster is marked failed and the
/// error carries the operator's last `lines` log lines.
pub fn with_operator_log<T>(
    cluster: &Cluster,
    op: &OperatorProcess,
    lines: usize,
    result: Result<T>,
) -> Result<T> {
    result.map_err(|e| {
        cluster.mark_failed();
        anyhow!("{e:#}\n--- operator log tail ---\n{}", op.log_tail(lines))
    })
}
