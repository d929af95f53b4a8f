//! LocustSchedule end to end on kwok: two operator replicas with leader
//! election and four `* * * * *` schedules side by side for three minutes —
//! `Allow` (its tests run to the end, history limit 1), `Forbid` (its first
//! test never ends: the next minutes are held back), `Replace` (each minute
//! replaces the running test), and a suspended one started once on demand
//! (`locust.io/run-now`). The leader is killed after the first minute and the
//! new leader after the second, with a fresh process started in its place:
//! every scheduled minute still gets exactly one test, on time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::schedule::{ConcurrencyPolicy, LocustSchedule};
use locust_operator::api::{LocustTest, Phase, schedule_condition_reason, schedule_event_reason};
use locust_operator::schedule::{RUN_NOW_ANNOTATION, SCHEDULE_LABEL, Timestamp, test_name};
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, ClusterOptions, checks, e2e, wait_for};

const NS: &str = "sched";
const LEASE_SECS: u64 = 4;
/// The whole scenario: four minutes of schedules and two leader changes.
const SCENARIO_BOUND: Duration = Duration::from_secs(420);

fn schedule(name: &str, policy: ConcurrencyPolicy) -> Result<LocustSchedule> {
    let path = operator::workspace_root().join("operator/samples/locustschedule.yaml");
    let mut s: LocustSchedule = olm_tests::yaml::from_str(&std::fs::read_to_string(&path)?)?;
    s.metadata.name = Some(name.into());
    s.spec.schedule = "* * * * *".into();
    s.spec.time_zone = None;
    s.spec.concurrency_policy = policy;
    s.spec.successful_tests_history_limit = 1;
    Ok(s)
}

/// When each test was first seen (wall clock), by name.
type Seen = Arc<Mutex<BTreeMap<String, Timestamp>>>;

/// Polls the tests every 100 ms: records when each is first seen, and ends
/// the running tests of the `allow` schedule (their master exits 0).
async fn watch_tests(cluster: &Cluster, client: Client, seen: Seen) {
    let tests: Api<LocustTest> = Api::namespaced(client, NS);
    loop {
        if let Ok(list) = tests.list(&ListParams::default()).await {
            let now = Timestamp::now();
            for t in list {
                let name = t.name_any();
                if let Ok(mut seen) = seen.lock() {
                    seen.entry(name.clone()).or_insert(now);
                }
                let allow = t.labels().get(SCHEDULE_LABEL).map(String::as_str) == Some("allow");
                if allow && checks::phase_of(&t) == Some(Phase::Running) {
                    let master = format!("{name}-master");
                    if let Ok(pods) = cluster.job_pods(NS, &master).await {
                        for p in pods {
                            let _ = cluster.complete_pod(NS, &p.name_any(), 0).await;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first whole minute after `t`.
fn minute_after(t: Timestamp) -> Result<Timestamp> {
    Ok(Timestamp::from_second((t.as_second() / 60 + 1) * 60)?)
}

async fn sleep_until(t: Timestamp) {
    let left = t.duration_since(Timestamp::now());
    if let Ok(left) = Duration::try_from(left) {
        tokio::time::sleep(left).await;
    }
}

/// TestCreated Events published on schedule `name` (repeats counted).
async fn creations(client: &Client, name: &str) -> Result<i32> {
    Ok(checks::events_for(client, NS, name)
        .await?
        .iter()
        .filter(|e| e.reason.as_deref() == Some(schedule_event_reason::TEST_CREATED))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum())
}

/// The LocustTests of schedule `name` that exist now.
async fn tests_of(client: &Client, name: &str) -> Result<Vec<String>> {
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), NS);
    let lp = ListParams::default().labels(&format!("{SCHEDULE_LABEL}={name}"));
    Ok(tests
        .list(&lp)
        .await?
        .iter()
        .map(|t| t.name_any())
        .collect())
}

/// Kills the current leader among `ops` and waits until another holds the lease.
async fn kill_leader(client: &Client, ops: &mut [OperatorProcess], tags: &[&str]) -> Result<()> {
    let holder = checks::lease_holder(client).await?.context("a leader")?;
    let i = tags
        .iter()
        .position(|t| holder.starts_with(&format!("operator-{t}_")))
        .with_context(|| format!("leader {holder} is none of {tags:?}"))?;
    ops[i].kill();
    eprintln!("killed the leader {holder}");
    wait_for(
        Duration::from_secs(LEASE_SECS * 4),
        Duration::from_millis(100),
        || async { Ok(checks::lease_holder(client).await?.filter(|h| *h != holder)) },
    )
    .await
    .context("another replica takes the lease")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_on_time_once_across_restarts_and_leader_changes() -> Result<()> {
    let test = "schedules_run_on_time_once_across_restarts_and_leader_changes";
    let options = ClusterOptions::named("e2e-schedule");
    let Some((cluster, kubeconfig, client)) = e2e::operator_cluster_in(test, options, NS).await?
    else {
        return Ok(());
    };
    let args = e2e::leader_election_args(LEASE_SECS, 3);
    let tags = ["a", "b", "c"];
    let mut ops = vec![
        OperatorProcess::spawn(&cluster, &kubeconfig, tags[0], &args)?,
        OperatorProcess::spawn(&cluster, &kubeconfig, tags[1], &args)?,
    ];
    for op in &ops {
        op.wait_ready(Duration::from_secs(30)).await?;
    }

    let seen: Seen = Arc::default();
    let scenario = async {
        let schedules: Api<LocustSchedule> = Api::namespaced(client.clone(), NS);
        let mut held = schedule("held", ConcurrencyPolicy::Forbid)?;
        held.spec.suspend = true;
        held.metadata.annotations = Some([(RUN_NOW_ANNOTATION.into(), "e2e-1".into())].into());
        let mut created_at = None;
        for s in [
            schedule("allow", ConcurrencyPolicy::Allow)?,
            schedule("forbid", ConcurrencyPolicy::Forbid)?,
            schedule("replace", ConcurrencyPolicy::Replace)?,
            held,
        ] {
            let s = schedules.create(&PostParams::default(), &s).await?;
            created_at = s.metadata.creation_timestamp.map(|t| t.0).max(created_at);
        }
        let m1 = minute_after(created_at.context("creationTimestamp")?)?;
        let minutes = [m1, minute_after(m1)?, minute_after(minute_after(m1)?)?];

        // Run now: one test at once, although the schedule is suspended.
        wait_for(
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async { Ok((tests_of(&client, "held").await?.len() == 1).then_some(())) },
        )
        .await
        .context("the run-now test")?;

        for (i, minute) in minutes.iter().enumerate() {
            eprintln!("waiting for {minute}");
            sleep_until(*minute).await;
            for name in ["allow", "replace"]
                .iter()
                .chain((i == 0).then_some(&"forbid"))
            {
                let want = test_name(name, *minute);
                let first = wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
                    let seen = seen.clone();
                    let want = want.clone();
                    async move { Ok(seen.lock().ok().and_then(|s| s.get(&want).copied())) }
                })
                .await
                .with_context(|| format!("{want} for {minute}"))?;
                let delay = first.duration_since(*minute).as_millis();
                eprintln!(
                    "FIGURE schedule {name}: the test for {minute} seen {delay} ms after the minute (polling every 100 ms; leader changes: {i})"
                );
                ensure!(delay < 10_000, "{want} late by {delay} ms");
            }
            if i == 1 {
                // A fresh process in the place of the one killed after the first minute.
                let fresh = OperatorProcess::spawn(&cluster, &kubeconfig, tags[2], &args)?;
                fresh.wait_ready(Duration::from_secs(30)).await?;
                ops.push(fresh);
            }
            if i < 2 {
                // A leader change after the first minute and after the second.
                kill_leader(&client, &mut ops, &tags).await?;
            }
        }

        // Let the last tests of `allow` end and be pruned, then check.
        let last = test_name("allow", minutes[2]);
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || async { Ok((tests_of(&client, "allow").await? == [last.clone()]).then_some(())) },
        )
        .await
        .context("allow keeps only its last test (successfulTestsHistoryLimit 1)")?;
        let replace_last = test_name("replace", minutes[2]);
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || async {
                Ok((tests_of(&client, "replace").await? == [replace_last.clone()]).then_some(()))
            },
        )
        .await
        .context("replace keeps only the running test")?;
        let forbid_tests = tests_of(&client, "forbid").await?;
        ensure!(
            forbid_tests == [test_name("forbid", minutes[0])],
            "forbid held minutes 2 and 3 back: {forbid_tests:?}, {:?}",
            schedules.get("forbid").await?.status
        );
        let forbid = schedules.get("forbid").await?;
        let held_back = forbid.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.reason == schedule_condition_reason::CONCURRENT_TEST_RUNNING)
        });
        ensure!(
            held_back,
            "forbid reports ConcurrentTestRunning: {:?}",
            forbid.status
        );

        // Every test ever seen belongs to a scheduled minute (or is the run-now
        // one), each minute once; one creation Event per test.
        let seen: Vec<String> = seen
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        for (name, want) in [("allow", 3), ("forbid", 1), ("replace", 3), ("held", 1)] {
            let mine: Vec<&String> = seen
                .iter()
                .filter(|t| t.starts_with(&format!("{name}-")))
                .collect();
            let created = creations(&client, name).await?;
            eprintln!(
                "FIGURE schedule {name}: {} tests over 3 minutes, {created} TestCreated Events: {mine:?}",
                mine.len()
            );
            ensure!(mine.len() == want, "{name}: {mine:?}, want {want}");
            ensure!(
                created == want as i32,
                "{name}: {created} TestCreated Events, want {want}"
            );
        }
        ensure!(
            seen.iter()
                .all(|t| !t.starts_with("held-")
                    || !t["held-".len()..].starts_with(char::is_numeric)),
            "suspended: no scheduled test"
        );
        for op in &ops {
            ensure!(!op.log().contains("panicked"), "{}", op.log_tail(20));
        }
        Ok::<(), anyhow::Error>(())
    };
    // The watch polls for as long as the scenario runs, and no longer than
    // SCENARIO_BOUND.
    let result = tokio::time::timeout(SCENARIO_BOUND, async {
        tokio::select! {
            result = scenario => result,
            () = watch_tests(&cluster, client.clone(), seen.clone()) => bail!("the watch ended"),
        }
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("not done within {SCENARIO_BOUND:?}")));
    if let Err(e) = result {
        cluster.mark_failed();
        let logs: Vec<String> = ops.iter().map(|op| op.log_tail(40)).collect();
        bail!("{e:#}\n--- operator logs ---\n{}", logs.join("\n---\n"));
    }
    Ok(())
}
