//! Two operator replicas with leader election on a real apiserver: only the
//! leader reconciles; SIGKILL of the leader hands over within the lease
//! duration without duplicate children; an operator restarted mid-test picks
//! the test up where it was.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use locust_operator::api::{LocustTest, Phase};
use olm_tests::checks;

use olm_tests::operator::OperatorProcess;
use olm_tests::{ClusterOptions, e2e, wait_for};

const LEASE_SECS: u64 = 4;

fn args() -> Vec<String> {
    e2e::leader_election_args(LEASE_SECS, 3)
}

async fn wait_phase(api: &Api<LocustTest>, name: &str, phase: Phase) -> Result<()> {
    checks::wait_phase(api, name, phase, Duration::from_secs(60))
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_and_restart() -> Result<()> {
    let (test, ns) = ("leader_election_and_restart", "team-a");
    let options = ClusterOptions::named("e2e-leader");
    let Some((cluster, kubeconfig, client)) = e2e::operator_cluster_in(test, options, ns).await?
    else {
        return Ok(());
    };
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);

    let mut a = OperatorProcess::spawn(&cluster, &kubeconfig, "a", &args())?;
    let mut b = OperatorProcess::spawn(&cluster, &kubeconfig, "b", &args())?;
    a.wait_ready(Duration::from_secs(30)).await?;
    b.wait_ready(Duration::from_secs(30)).await?;
    let first = wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { checks::lease_holder(&client).await },
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
            .create(&PostParams::default(), &checks::sample("one")?)
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
                Ok(checks::lease_holder(&client)
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
            .create(&PostParams::default(), &checks::sample("two")?)
            .await?;
        wait_phase(&tests, "two", Phase::Running).await?;
        cluster.complete_pod(ns, &pods[0].name_any(), 0).await?;
        wait_phase(&tests, "one", Phase::Succeeded).await?;
        checks::assert_children_once(&client, ns, "one").await?;
        checks::assert_children_once(&client, ns, "two").await?;

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
        checks::assert_children_once(&client, ns, "two").await?;
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
