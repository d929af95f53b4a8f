//! Long-running faults (issue #7), in a bounded form for CI and at full
//! length with `make reliability`:
//! - the operator SIGKILLed at random points while tests are created in
//!   bursts and finished (`LOCUST_SOAK_KILLS`, default 12; 50 in full);
//! - the leader of two replicas SIGKILLed during a burst, the takeover timed
//!   against the lease settings (`LOCUST_FAILOVER_TRIALS`, default 3; 10 in
//!   full).
//!
//! Figures are printed on lines starting with `FIGURE`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kube::Client;
use locust_operator::api::Phase;
use olm_tests::checks::{self, lease_holder};
use olm_tests::cluster::NodeCapacity;
use olm_tests::load;
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, ClusterOptions, e2e, wait_for};

/// `name` from the environment, else `default`.
fn env_count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a count")),
        Err(_) => Ok(default),
    }
}

/// A small deterministic generator (xorshift64*), seeded and printed so a
/// failing run can be replayed with `LOCUST_SOAK_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Result<Self> {
        let seed = match std::env::var("LOCUST_SOAK_SEED") {
            Ok(v) => v.parse().context("LOCUST_SOAK_SEED")?,
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64,
        };
        eprintln!("FIGURE soak seed {seed} (replay with LOCUST_SOAK_SEED={seed})");
        Ok(Self(seed | 1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A kwok cluster named `name` with the operator's prerequisites, and the
/// operator's kubeconfig (`Ok(None)`: skip).
async fn start(name: &str, ns: &str) -> Result<Option<(Cluster, PathBuf, Client)>> {
    let options = ClusterOptions {
        name: name.into(),
        // Room for every pod of the full-length soak (250 tests × 2 pods
        // at the sample's requests), so nothing is Unschedulable.
        node_capacity: NodeCapacity {
            cpu: "1000".into(),
            memory: "4Ti".into(),
            pods: "1000".into(),
        },
        ..ClusterOptions::default()
    };
    e2e::operator_cluster_in(name, options, ns).await
}

/// Bursts of tests are created while the operator is SIGKILLed at random
/// points (during start-up, cache sync, child creation, status writes) and
/// restarted; masters of earlier tests finish meanwhile. At the end every test
/// is Succeeded with exactly its children, nothing is orphaned, and the
/// Events stay proportionate (no storm from repeated restarts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_at_random_points() -> Result<()> {
    let kills = env_count("LOCUST_SOAK_KILLS", 12)?;
    let burst = env_count("LOCUST_SOAK_BURST", 5)?;
    let ns = "soak";
    let Some((cluster, kubeconfig, client)) = start("rel-soak", ns).await? else {
        return Ok(());
    };
    let args = operator::single_replica_args();
    let mut rng = Rng::new()?;
    let started = Instant::now();
    let mut names: Vec<String> = Vec::new();
    let mut logs = String::new();
    let mut finished_masters = 0usize;

    let result = async {
        for round in 0..kills {
            let mut op = OperatorProcess::spawn(&cluster, &kubeconfig, &format!("soak-{round}"), &args)?;
            let batch = load::test_names(&format!("r{round:03}"), burst);
            // Create the burst while the operator starts; kill it at a random
            // point between 50 ms and 1.5 s after its start.
            let alive_for = rng.millis(50, 1500);
            let create = load::create_tests(&client, ns, &batch, burst);
            let (created, ()) = tokio::join!(create, tokio::time::sleep(alive_for));
            created?;
            names.extend(batch);
            // Finish the masters of a random earlier round now and then, so
            // kills also land on Running -> Succeeded transitions.
            if round >= 2 && rng.next() % 2 == 0 {
                let earlier = rng.next() as usize % (round - 1);
                finished_masters += load::complete_pods(
                    &cluster,
                    ns,
                    &format!("app.kubernetes.io/component=master,app.kubernetes.io/instance in ({})",
                        load::test_names(&format!("r{earlier:03}"), burst).join(",")),
                    burst,
                )
                .await?;
            }
            op.kill();
            logs.push_str(&op.log());
        }
        let soak_time = started.elapsed();

        // One last operator converges everything.
        let op = OperatorProcess::spawn(&cluster, &kubeconfig, "final", &args)?;
        op.wait_ready(Duration::from_secs(30)).await?;
        let converge = Instant::now();
        load::wait_all_phase(&client, ns, &names, Phase::Running, Duration::from_secs(180))
            .await
            .context("after the kills, every test reaches Running (or Succeeded)")?;
        let to_running = converge.elapsed();
        load::complete_all_pods(&cluster, ns, 8).await?;
        load::wait_all_phase(&client, ns, &names, Phase::Succeeded, Duration::from_secs(180))
            .await
            .context("every test Succeeded")?;
        let report = load::children_report(&client, ns).await?;
        report.ensure_exact()?;
        ensure!(
            report.per_test.len() == names.len(),
            "{} tests with children, {} created",
            report.per_test.len(),
            names.len()
        );

        // Events: per test, and per (test, reason) repeat counts.
        let events = checks::events_by_test(&client, ns).await?;
        let mut per_test: BTreeMap<&str, i32> = BTreeMap::new();
        for ((test, _), count) in &events {
            *per_test.entry(test.as_str()).or_default() += count;
        }
        let max_per_test = per_test.values().copied().max().unwrap_or(0);
        let total: i32 = per_test.values().sum();
        let max_repeat = events.values().copied().max().unwrap_or(0);
        logs.push_str(&op.log());
        let panics = logs.matches("panicked").count();
        eprintln!(
            "FIGURE soak: {kills} SIGKILLs over {soak_time:?}, {} tests ({burst} per burst), {finished_masters} masters finished during the soak; \
             converged to Running {to_running:?} after the last restart; children exact, 0 orphans; \
             Events {total} in all, max {max_per_test} per test, max repeat count {max_repeat}; panics {panics}",
            names.len()
        );
        ensure!(panics == 0, "a panic was logged");
        // A normal life writes Created, Running and Succeeded; a restart may
        // repeat one (the recorder then bumps its count).
        ensure!(
            max_per_test <= 6,
            "Event storm: a test has {max_per_test} Events: {:?}",
            events.iter().filter(|(_, c)| **c > 1).take(10).collect::<Vec<_>>()
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        cluster.mark_failed();
        let api: kube::Api<locust_operator::api::LocustTest> =
            kube::Api::namespaced(client.clone(), ns);
        let failed: Vec<String> = api
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| checks::phase_of(t) == Some(Phase::Failed))
            .take(3)
            .map(|t| {
                format!(
                    "{}: {}",
                    kube::ResourceExt::name_any(&t),
                    serde_json::to_string(&t.status).unwrap_or_default()
                )
            })
            .collect();
        bail!("{e:#}\nFailed tests: {failed:#?}");
    }
    Ok(())
}

const LEASE_SECS: u64 = 4;

fn leader_args() -> Vec<String> {
    e2e::leader_election_args(LEASE_SECS, 3)
}

/// Two replicas; in each trial the leader is SIGKILLed while a burst of tests
/// is being created, and the time until the other replica holds the lease,
/// and until it has reconciled the whole burst, is measured. The killed
/// replica comes back as the new standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_under_load() -> Result<()> {
    let ns = "failover";
    let Some((cluster, kubeconfig, client)) = start("rel-failover", ns).await? else {
        return Ok(());
    };
    let trials = env_count("LOCUST_FAILOVER_TRIALS", 3)?;
    let burst = env_count("LOCUST_FAILOVER_BURST", 10)?;
    let mut replicas: BTreeMap<String, OperatorProcess> = BTreeMap::new();
    for tag in ["a", "b"] {
        let op = OperatorProcess::spawn(&cluster, &kubeconfig, tag, &leader_args())?;
        replicas.insert(tag.to_owned(), op);
    }
    let mut takeovers = Vec::new();
    let mut reconciled = Vec::new();
    let mut names = Vec::new();
    let result = async {
        for op in replicas.values() {
            op.wait_ready(Duration::from_secs(30)).await?;
        }
        for trial in 0..trials {
            let holder = wait_for(Duration::from_secs(30), Duration::from_millis(50), || async {
                lease_holder(&client).await
            })
            .await?;
            let leader_tag = holder
                .strip_prefix("operator-")
                .and_then(|h| h.split('_').next())
                .map(str::to_owned)
                .with_context(|| format!("holder {holder}"))?;
            let batch = load::test_names(&format!("t{trial:02}"), burst);
            let create = load::create_tests(&client, ns, &batch, burst);
            let mut leader = replicas
                .remove(&leader_tag)
                .with_context(|| format!("no replica {leader_tag} (holder {holder})"))?;
            let kill = async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let killed_at = Instant::now();
                leader.kill();
                killed_at
            };
            let (created, killed_at) = tokio::join!(create, kill);
            created?;
            names.extend(batch.clone());
            let new_holder = wait_for(
                Duration::from_secs(LEASE_SECS * 4),
                Duration::from_millis(50),
                || async {
                    Ok(lease_holder(&client)
                        .await?
                        .filter(|h| !h.starts_with(&format!("operator-{leader_tag}_"))))
                },
            )
            .await
            .context("the standby takes the lease")?;
            let takeover = killed_at.elapsed();
            load::wait_all_phase(&client, ns, &batch, Phase::Running, Duration::from_secs(60))
                .await?;
            let all_running = killed_at.elapsed();
            eprintln!(
                "FIGURE failover trial {trial}: {new_holder} took over {takeover:?} after the kill; burst of {burst} Running {all_running:?} after the kill"
            );
            takeovers.push(takeover);
            reconciled.push(all_running);
            // The killed replica comes back as the standby.
            let tag = format!("r{trial}");
            let op = OperatorProcess::spawn(&cluster, &kubeconfig, &tag, &leader_args())?;
            op.wait_ready(Duration::from_secs(30)).await?;
            replicas.insert(tag, op);
        }
        load::complete_all_pods(&cluster, ns, 8).await?;
        load::wait_all_phase(&client, ns, &names, Phase::Succeeded, Duration::from_secs(120))
            .await?;
        load::children_report(&client, ns).await?.ensure_exact()?;
        takeovers.sort();
        reconciled.sort();
        eprintln!(
            "FIGURE failover over {trials} trials (lease {LEASE_SECS}s, renew 3s, retry 0.5s): takeover median {:?}, max {:?}; burst Running median {:?}, max {:?}",
            percentile(&takeovers, 0.5),
            percentile(&takeovers, 1.0),
            percentile(&reconciled, 0.5),
            percentile(&reconciled, 1.0)
        );
        // A standby may take the lease once it saw it unchanged for a full
        // lease duration, polling every retry period.
        let bound = Duration::from_secs(LEASE_SECS) + Duration::from_millis(1500);
        ensure!(
            percentile(&takeovers, 1.0) <= bound,
            "takeover above {bound:?}: {takeovers:?}"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        cluster.mark_failed();
        let tails: Vec<String> = replicas
            .iter()
            .map(|(t, op)| format!("--- {t} ---\n{}", op.log_tail(30)))
            .collect();
        bail!("{e:#}\n{}", tails.join("\n"));
    }
    Ok(())
}
