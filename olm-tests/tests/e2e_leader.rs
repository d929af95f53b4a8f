//! Two operator replicas with leader election on a real apiserver: only the
//! leader reconciles; SIGKILL of the leader hands over within the lease
//! duration without duplicate children; an operator restarted mid-test picks
//! the test up where it was.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use locust_operator::api::{LocustTest, Phase};
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, ClusterOptions, wait_for};

const LEASE: &str = "locust-k8s-operator.locust.io";
const LEASE_SECS: u64 = 4;

fn sample(name: &str) -> Result<LocustTest> {
    let path = operator::workspace_root().join("operator/samples/locusttest-v2.yaml");
    let mut t: LocustTest = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    t.metadata.name = Some(name.into());
    Ok(t)
}

fn args() -> Vec<String> {
    vec![
        "--leader-elect=true".into(),
        "--disable-webhooks".into(),
        format!("--lease-duration={LEASE_SECS}s"),
        "--renew-deadline=3s".into(),
        "--retry-period=500ms".into(),
    ]
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt(LEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

async fn wait_phase(api: &Api<LocustTest>, name: &str, phase: Phase) -> Result<()> {
    wait_for(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let t = api.get(name).await?;
            Ok((t.status.and_then(|s| s.phase) == Some(phase)).then_some(()))
        },
    )
    .await
    .with_context(|| format!("{name}: waiting for {phase}"))
}

async fn assert_children_once(client: &kube::Client, ns: &str, test: &str) -> Result<()> {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={test}"));
    let jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items;
    let svcs = Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items;
    ensure!(
        jobs.len() == 2 && svcs.len() == 1,
        "{test}: {} Jobs, {} Services",
        jobs.len(),
        svcs.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_and_restart() -> Result<()> {
    let Some(tools) = olm_tests::tools::tools_or_skip("leader_election_and_restart") else {
        return Ok(());
    };
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        name: "e2e-leader".into(),
        ..ClusterOptions::default()
    })
    .await?;
    let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
    let client = cluster.admin_client();
    let ns = "team-a";
    operator::create_namespace(&client, ns, &[]).await?;
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), operator::OPERATOR_NAMESPACE);

    let mut a = OperatorProcess::spawn(&cluster, &kubeconfig, "a", &args())?;
    let mut b = OperatorProcess::spawn(&cluster, &kubeconfig, "b", &args())?;
    a.wait_ready(Duration::from_secs(30)).await?;
    b.wait_ready(Duration::from_secs(30)).await?;
    let first = wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { holder(&leases).await },
    )
    .await
    .context("a leader is elected")?;
    let (leader, follower) = if first.starts_with("operator-a_") {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let follower_tag = if first.starts_with("operator-a_") {
        "operator-b_"
    } else {
        "operator-a_"
    };

    let result = async {
        // Only the leader reconciles.
        tests
            .create(&PostParams::default(), &sample("one")?)
            .await?;
        let pods = cluster
            .wait_for_running_pods(ns, "job-name=one-master", 1, Duration::from_secs(60))
            .await?;
        wait_phase(&tests, "one", Phase::Running).await?;
        ensure!(
            leader.log().contains("created master Service"),
            "leader created the children"
        );
        ensure!(
            !follower.log().contains("created master Service"),
            "follower reconciled:\n{}",
            follower.log_tail(20)
        );

        // SIGKILL the leader: the follower takes over within the lease duration.
        let killed_at = Instant::now();
        leader.kill();
        let new = wait_for(
            Duration::from_secs(LEASE_SECS * 4),
            Duration::from_millis(50),
            || async {
                Ok(holder(&leases)
                    .await?
                    .filter(|h| h.starts_with(follower_tag)))
            },
        )
        .await
        .context("follower takes the lease")?;
        let takeover = killed_at.elapsed();
        eprintln!(
            "leader failover: {new} took over after {takeover:?} (lease {LEASE_SECS}s, retry 0.5s)"
        );
        ensure!(
            takeover <= Duration::from_secs(LEASE_SECS) + Duration::from_millis(1500),
            "takeover took {takeover:?}, lease duration is {LEASE_SECS}s"
        );

        // The new leader reconciles new and existing tests; nothing is duplicated.
        tests
            .create(&PostParams::default(), &sample("two")?)
            .await?;
        wait_phase(&tests, "two", Phase::Running).await?;
        cluster.complete_pod(ns, &pods[0].name_any(), 0).await?;
        wait_phase(&tests, "one", Phase::Succeeded).await?;
        assert_children_once(&client, ns, "one").await?;
        assert_children_once(&client, ns, "two").await?;

        // Restart mid-test: no operator runs while the master of "two" finishes.
        follower.kill();
        let master_two = cluster.job_pods(ns, "two-master").await?;
        ensure!(master_two.len() == 1, "one master pod for two");
        cluster
            .complete_pod(ns, &master_two[0].name_any(), 0)
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(
            tests.get("two").await?.status.and_then(|s| s.phase) == Some(Phase::Running),
            "no operator ran, so nothing changed"
        );
        let restarted = OperatorProcess::spawn(&cluster, &kubeconfig, "c", &args())?;
        restarted.wait_ready(Duration::from_secs(30)).await?;
        wait_phase(&tests, "two", Phase::Succeeded).await?;
        assert_children_once(&client, ns, "two").await?;
        ensure!(!restarted.log().contains("panicked"));
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        cluster.mark_failed();
        bail!(
            "{e:#}\n--- a ---\n{}\n--- b ---\n{}",
            a.log_tail(30),
            b.log_tail(30)
        );
    }
    Ok(())
}
