//! Every RBAC verb the operator holds is needed (issue #7): for each
//! (API group, resource, verb) of `operator/src/rbac.rs`, an operator runs
//! under the operator's rules minus that one verb, and the end-to-end
//! scenario below must fail; under the full rules it must pass (and `/readyz`
//! must say ready at its end, and the operator's log must show no request
//! refused as Forbidden: a refused watch is retried by re-listing, which
//! would otherwise hide a missing `watch`). All variants
//! run at once on one cluster, each with its own ServiceAccount, namespace
//! (`--watch-namespace`) and leader Lease.
//!
//! The scenario exercises everything the rules are for: leader election
//! (acquire, then renew past the renew deadline), watching LocustTests, Jobs,
//! Services and pods, creating the children (with `blockOwnerDeletion` owner
//! references, which OwnerReferencesPermissionEnforcement checks), writing
//! status, recreating a deleted Service twice (the second identical Event is
//! a PATCH of its series), finishing the test, and failing a second test
//! that cannot be scheduled at its start deadline with the cause its pods'
//! Warning Events name (`Unschedulable`, read from the kube-scheduler's
//! `FailedScheduling`; without the Events it would be `StartTimedOut`),
//! serving the secure `/metrics` to a token allowed to read them (a
//! TokenReview and a SubjectAccessReview per token), and running a
//! LocustSchedule: watching it, creating its run-now test (owned by the
//! schedule, with `blockOwnerDeletion`), writing its status, and deleting the
//! finished test past the history limit.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use locust_operator::api::{LocustTest, Phase};
use locust_operator::rbac::{CLUSTER, NAMESPACED, Permission};
use olm_tests::checks::{self, wait_phase};
use olm_tests::metrics_client::{reader_token, scrape};
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, e2e, wait_for};

/// How long a variant may take; the full rules need well under half of it.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(75);
/// How soon a deleted Service must be back.
const RECREATE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an Event may lag behind the status write it announces.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One verb on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grant {
    namespaced: bool,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
}

fn grants() -> Vec<Grant> {
    let mut out = Vec::new();
    for (namespaced, table) in [(false, CLUSTER), (true, NAMESPACED)] {
        for p in table {
            for resource in p.resources {
                for verb in p.verbs {
                    out.push(Grant {
                        namespaced,
                        group: p.api_group,
                        resource,
                        verb,
                    });
                }
            }
        }
    }
    out
}

/// The rules of `table` without `skip`.
fn rules_without(table: &[Permission], namespaced: bool, skip: Option<&Grant>) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    for p in table {
        for resource in p.resources {
            let verbs: Vec<String> = p
                .verbs
                .iter()
                .filter(|v| {
                    !skip.is_some_and(|g| {
                        g.namespaced == namespaced
                            && g.group == p.api_group
                            && g.resource == *resource
                            && g.verb == **v
                    })
                })
                .map(|v| (*v).to_owned())
                .collect();
            if verbs.is_empty() {
                continue;
            }
            rules.push(PolicyRule {
                api_groups: Some(vec![p.api_group.to_owned()]),
                resources: Some(vec![(*resource).to_owned()]),
                verbs,
                ..PolicyRule::default()
            });
        }
    }
    rules
}

/// The scenario; `Ok` when the operator did everything it is for.
async fn scenario(
    cluster: &Cluster,
    client: &Client,
    ns: &str,
    op: &OperatorProcess,
    reader_token: &str,
) -> Result<()> {
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    tests
        .create(&PostParams::default(), &checks::sample("t")?)
        .await?;
    let mut stuck = checks::sample("s")?;
    stuck.spec.scheduling = Some(serde_json::from_value(serde_json::json!({
        "nodeSelector": {"locust.io/no-such-node": "true"}
    }))?);
    tests.create(&PostParams::default(), &stuck).await?;
    wait_phase(&tests, "t", Phase::Running, SCENARIO_TIMEOUT).await?;
    checks::assert_children_once(client, ns, "t").await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for round in 1..=2 {
        let old = services.get("t-master").await?.metadata.uid;
        services
            .delete("t-master", &DeleteParams::default())
            .await?;
        // Noticed through the Service watch (the periodic requeue is
        // pushed out to a minute by --stats-interval).
        wait_for(RECREATE_TIMEOUT, Duration::from_millis(200), || async {
            Ok(services
                .get_opt("t-master")
                .await?
                .filter(|s| s.metadata.uid != old && s.metadata.deletion_timestamp.is_none())
                .map(drop))
        })
        .await
        .with_context(|| format!("the deleted Service is recreated (round {round})"))?;
    }
    let repeats = wait_for(SCENARIO_TIMEOUT, Duration::from_millis(250), || async {
        let events = checks::events_by_test(client, ns).await?;
        let n = events
            .get(&("t".to_owned(), "ChildRecreated".to_owned()))
            .copied()
            .unwrap_or(0);
        Ok((n >= 2).then_some(n))
    })
    .await
    .context("the repeated ChildRecreated Event is counted twice")?;
    ensure!(repeats >= 2);
    let master = cluster.job_pods(ns, "t-master").await?;
    ensure!(master.len() == 1, "{} master pods", master.len());
    cluster
        .complete_pod(ns, &kube::ResourceExt::name_any(&master[0]), 0)
        .await?;
    wait_phase(&tests, "t", Phase::Succeeded, SCENARIO_TIMEOUT).await?;
    let stuck = wait_phase(&tests, "s", Phase::Failed, SCENARIO_TIMEOUT).await?;
    let (_, why, _) = olm_tests::fixture::condition(&stuck, "TestCompleted").unwrap_or_default();
    ensure!(
        why == "Unschedulable",
        "the unschedulable test failed with {why}, not Unschedulable"
    );
    schedule_scenario(client, ns).await?;
    let (code, body) = op.health("/readyz").await?;
    ensure!(code == 200, "/readyz {code}: {body}");
    let (code, body) = scrape(op.net(), op.metrics_port, Some(reader_token), None).await?;
    ensure!(
        code == 200 && body.contains("locust_test_phase"),
        "secure /metrics for the metrics reader: {code} {body:.200}"
    );
    // Some verbs only cost retries when missing (a watch that is refused is
    // retried by re-listing): the operator must never have been refused.
    if let Some(line) = op
        .log()
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("forbidden"))
    {
        anyhow::bail!("the API server refused a request: {line}");
    }
    // The operator publishes a transition's Event after writing the status
    // it announces: wait for it (bounded) rather than race it.
    const REASONS: [&str; 3] = ["Created", "TestStarted", "TestSucceeded"];
    let has_all = |events: &std::collections::BTreeMap<(String, String), i32>| {
        REASONS
            .iter()
            .all(|r| events.contains_key(&("t".to_owned(), (*r).to_owned())))
    };
    let found = wait_for(EVENT_TIMEOUT, Duration::from_millis(200), || async {
        let events = checks::events_by_test(client, ns).await?;
        Ok(has_all(&events).then_some(()))
    })
    .await;
    if found.is_err() {
        let events = checks::events_by_test(client, ns).await?;
        anyhow::bail!("missing one of the {REASONS:?} Events: {events:?}");
    }
    Ok(())
}

/// The schedule part of [`scenario`]: a schedule that is never due, with a
/// run-now annotation and no history kept: its test is created (and fails at
/// its start deadline: it cannot be scheduled, which keeps the scenario off
/// the nodes' capacity), the status records it, and the finished test is
/// deleted.
async fn schedule_scenario(client: &Client, ns: &str) -> Result<()> {
    use locust_operator::api::LocustSchedule;
    use locust_operator::schedule::runs::{RUN_NOW_ANNOTATION, run_now_test_name};
    let schedules: Api<LocustSchedule> = Api::namespaced(client.clone(), ns);
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let mut template = checks::sample("x")?.spec;
    template.scheduling = Some(serde_json::from_value(serde_json::json!({
        "nodeSelector": {"locust.io/no-such-node": "true"}
    }))?);
    let schedule: LocustSchedule = serde_json::from_value(serde_json::json!({
        "apiVersion": locust_operator::api::SCHEDULE_API_VERSION,
        "kind": locust_operator::api::SCHEDULE_KIND,
        "metadata": {"name": "sch", "annotations": {RUN_NOW_ANNOTATION: "1"}},
        "spec": {
            "schedule": "0 0 1 1 *",
            "failedTestsHistoryLimit": 0,
            "template": {"spec": template},
        },
    }))?;
    schedules.create(&PostParams::default(), &schedule).await?;
    let run = run_now_test_name("sch", "1");
    wait_for(SCENARIO_TIMEOUT, Duration::from_millis(200), || async {
        Ok(tests.get_opt(&run).await?.map(drop))
    })
    .await
    .context("the schedule creates its run-now test")?;
    wait_for(SCENARIO_TIMEOUT, Duration::from_millis(250), || async {
        let status = schedules.get("sch").await?.status.unwrap_or_default();
        let gone = tests.get_opt(&run).await?.is_none();
        let recorded = status.last_result == Some(Phase::Failed)
            && status.last_run_now_token.as_deref() == Some("1");
        Ok((gone && recorded).then_some(()))
    })
    .await
    .context("the failed run-now test is pruned and the schedule's status records it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rbac_verb_is_needed() -> Result<()> {
    let (test, name) = ("every_rbac_verb_is_needed", "rbac-ablation");
    let Some(cluster) = e2e::kwok_cluster(test, name).await? else {
        return Ok(());
    };
    let client = cluster.admin_client();
    operator::install_crd(
        &client,
        &operator::crd_without_webhook(operator::bundle_crd()?),
    )
    .await?;
    operator::install_crd(&client, &operator::bundle_schedule_crd()?).await?;

    // A scraper allowed to read the secure metrics.
    let reader_token = reader_token(&client).await?;

    // Variant 0: the full rules; variant i: without grants()[i - 1].
    let grants = grants();
    let mut variants: Vec<Option<Grant>> = vec![None];
    variants.extend(grants.iter().cloned().map(Some));
    let mut ops = Vec::new();
    for (i, skip) in variants.iter().enumerate() {
        let name = format!("abl-{i:02}");
        operator::install_rbac_as(
            &client,
            &name,
            rules_without(CLUSTER, false, skip.as_ref()),
            rules_without(NAMESPACED, true, skip.as_ref()),
        )
        .await?;
        operator::create_namespace(&client, &name, &[]).await?;
        let kubeconfig = operator::operator_kubeconfig(&cluster, &name).await?;
        let op = OperatorProcess::spawn(
            &cluster,
            &kubeconfig,
            &name,
            &[
                "--leader-elect=true".into(),
                format!("--leader-election-id={name}"),
                "--lease-duration=3s".into(),
                "--renew-deadline=2s".into(),
                "--retry-period=500ms".into(),
                "--disable-webhooks".into(),
                "--stats-interval=60s".into(),
                "--start-timeout=10s".into(),
                "--metrics-secure=true".into(),
                format!("--watch-namespace={name}"),
            ],
        )?;
        ops.push((name, skip.clone(), op));
    }

    let outcomes = futures::future::join_all(ops.iter().map(|(name, _, op)| {
        let (cluster, client, reader_token) = (&cluster, &client, reader_token.as_str());
        async move {
            tokio::time::timeout(
                SCENARIO_TIMEOUT,
                scenario(cluster, client, name, op, reader_token),
            )
            .await
        }
    }))
    .await;

    let mut unneeded = Vec::new();
    let mut report = Vec::new();
    for ((name, skip, op), outcome) in ops.iter().zip(outcomes) {
        let outcome = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("not done within {SCENARIO_TIMEOUT:?}")),
        };
        match (skip, &outcome) {
            (None, Err(e)) => {
                cluster.mark_failed();
                anyhow::bail!(
                    "the full rules must pass the scenario: {e}\n--- operator ---\n{}",
                    op.log_tail(40)
                );
            }
            (None, Ok(())) => report.push(format!("{name}: full rules: scenario passed")),
            (Some(g), Ok(())) => {
                unneeded.push(format!("{} {}/{}", g.verb, g.group, g.resource));
            }
            (Some(g), Err(e)) => {
                let first = e.lines().next().unwrap_or_default();
                report.push(format!(
                    "{name}: without {} {}/{}: fails ({first})",
                    g.verb, g.group, g.resource
                ));
            }
        }
    }
    eprintln!(
        "FIGURE RBAC ablation over {} verbs:\n{}",
        grants.len(),
        report.join("\n")
    );
    if !unneeded.is_empty() {
        cluster.mark_failed();
    }
    ensure!(
        unneeded.is_empty(),
        "the operator does its whole job without: {unneeded:?} — drop them from operator/src/rbac.rs"
    );
    Ok(())
}
