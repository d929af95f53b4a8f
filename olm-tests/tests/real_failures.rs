//! Real-node end-to-end tests of what goes wrong: misconfigured tests end in
//! the phase and reason docs/status.md documents, within a bounded time, as
//! the real kubelet reports them (not a harness writing pod statuses); worker
//! pods lost mid-run (the Eviction API, a plain delete, a SIGKILL) and a lost
//! master end as docs/status.md ("Pods lost during a run") says.
//!
//! Each test boots its own cluster with the real node and operator process
//! (`olm_tests::fixture::RealNodeFixture`). Skips without the tools or
//! images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use kube::ResourceExt;
use kube::api::{DeleteParams, EvictParams};
use locust_operator::api::{LocustTest, Phase, condition_type as ct};
use olm_tests::cluster::pod_running;
use olm_tests::fixture::{self, RealNodeFixture, locust_spec, locustfile, phase};
use olm_tests::wait_for;
use serde_json::json;

/// The operator's `--grace-period` in the failure test: how long pods may
/// stay unhealthy before the test fails.
const GRACE: Duration = Duration::from_secs(20);

/// One misconfiguration and what docs/status.md says it ends in.
struct Case {
    name: &'static str,
    what: &'static str,
    spec: serde_json::Value,
    /// `PodsHealthy` reason on the way (None: not checked).
    unhealthy: Option<&'static str>,
    /// `TestCompleted` reason at the end.
    reason: &'static str,
    /// Words the final message must contain.
    message: &'static [&'static str],
}

/// (i) A missing ConfigMap (referenced by `env.configMapRefs`), a wrong image
/// and a bad command: each ends `Failed` with the documented reason, within a
/// bound (grace period 20 s), and the time each took is printed. (A missing
/// test-files ConfigMap is a volume the kubelet waits for without reporting a
/// container state: the pod stays `ContainerCreating`, which needs a start
/// deadline; docs/status.md says so.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_misconfigured_tests_fail_with_the_documented_reason() -> Result<()> {
    let (test, ns) = (
        "real_node_misconfigured_tests_fail_with_the_documented_reason",
        "failures",
    );
    let grace = format!("--grace-period={}s", GRACE.as_secs());
    // Three tests at once on one 2-CPU node: smaller CPU requests, so that
    // none waits for capacity (Unschedulable would mask the reasons).
    RealNodeFixture::run(
        test,
        "real-failures",
        &[&grace, "--pod-cpu-request=100m"],
        &[ns],
        async |fx| {
            fx.namespace(ns, &[]).await?;
            fx.start_target(ns, None).await?;
            fx.locustfile(ns, "files", &locustfile("", "\"/\"")).await?;
            let cases = [
                Case {
                    name: "missing-env",
                    what: "env.configMapRefs names no ConfigMap",
                    spec: locust_spec(
                        "files",
                        "5s",
                        json!({"env": {"configMapRefs": [{"name": "no-such-env"}]}}),
                    ),
                    unhealthy: Some("ConfigError"),
                    reason: "PodsUnhealthy",
                    message: &["CreateContainerConfigError", "no-such-env"],
                },
                Case {
                    name: "wrong-image",
                    what: "spec.image names a tag that does not exist",
                    spec: locust_spec(
                        "files",
                        "5s",
                        json!({"image": "localhost/locust-k8s-operator/locust:no-such-tag"}),
                    ),
                    unhealthy: Some("ImagePullError"),
                    reason: "PodsUnhealthy",
                    message: &["ImagePullError", "no-such-tag"],
                },
                Case {
                    name: "bad-command",
                    what: "master and worker commands name a program the image lacks",
                    spec: locust_spec(
                        "files",
                        "5s",
                        json!({
                            "master": {"command": "locsut -f /lotest/src/locustfile.py"},
                            "worker": {"command": "locsut -f /lotest/src/locustfile.py"},
                        }),
                    ),
                    unhealthy: None,
                    reason: "TestFailed",
                    message: &["master Job failed", "exited with code"],
                },
            ];
            let runs = cases.iter().map(|case| {
                async move {
                    let t0 = Instant::now();
                    fx.create_test(ns, case.name, case.spec.clone()).await?;
                    let unhealthy_after = match case.unhealthy {
                        Some(reason) => {
                            let waited = fx
                                .wait_test(
                                    ns,
                                    case.name,
                                    &format!("PodsHealthy {reason}"),
                                    Duration::from_secs(60),
                                    |t| {
                                        fixture::condition(t, ct::PODS_HEALTHY)
                                            .is_some_and(|(s, r, _)| s == "False" && r == reason)
                                            || phase(t).is_some_and(Phase::is_terminal)
                                    },
                                )
                                .await;
                            if let Err(e) = waited {
                                // Say where the test stands instead.
                                let now = fx.tests(ns).get(case.name).await.ok();
                                let state = now
                                    .as_ref()
                                    .map(|t| (phase(t), fixture::condition(t, ct::PODS_HEALTHY)));
                                return Err(
                                    e.context(format!("(phase, PodsHealthy) now: {state:?}"))
                                );
                            }
                            Some(t0.elapsed())
                        }
                        None => None,
                    };
                    let done = fx
                        .wait_terminal(ns, case.name, GRACE + Duration::from_secs(90))
                        .await?;
                    Ok::<_, anyhow::Error>((done, unhealthy_after, t0.elapsed()))
                }
            });
            let outcomes = futures::future::join_all(runs).await;
            let mut failures = Vec::new();
            for (case, outcome) in cases.iter().zip(outcomes) {
                match outcome.and_then(|(done, unhealthy_after, took)| {
                    check_case(case, &done, unhealthy_after, took)
                }) {
                    Ok(line) => eprintln!("FIGURE {line}"),
                    Err(e) => failures.push(format!("{} ({}): {e:#}", case.name, case.what)),
                }
            }
            ensure!(failures.is_empty(), "{}", failures.join("\n"));
            Ok(())
        },
    )
    .await
}

fn check_case(
    case: &Case,
    done: &LocustTest,
    unhealthy_after: Option<Duration>,
    took: Duration,
) -> Result<String> {
    ensure!(
        phase(done) == Some(Phase::Failed),
        "phase {:?}: {:?}",
        phase(done),
        done.status
    );
    let (_, reason, message) =
        fixture::condition(done, ct::TEST_COMPLETED).context("TestCompleted")?;
    ensure!(
        reason == case.reason,
        "TestCompleted reason {reason}, want {}: {message}",
        case.reason
    );
    for word in case.message {
        ensure!(
            message.contains(word),
            "{word:?} not in the message: {message}"
        );
    }
    Ok(format!(
        "{} ({}): Failed/{reason} {:.1}s after creation{}; message: {message}",
        case.name,
        case.what,
        took.as_secs_f64(),
        unhealthy_after
            .map(|d| format!(" (PodsHealthy=False after {:.1}s)", d.as_secs_f64()))
            .unwrap_or_default()
    ))
}

/// A pod's state and its true conditions, in one line.
fn pod_summary(p: &k8s_openapi::api::core::v1::Pod) -> String {
    let conditions: Vec<String> = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter(|c| c.status == "True")
                .map(|c| format!("{}({})", c.type_, c.reason.as_deref().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}, true conditions {conditions:?}",
        fixture::describe_pod(p)
    )
}

/// How a lost pod went: its final phase, exit code and conditions, and the
/// counts of its Job.
async fn loss_report(fx: &RealNodeFixture, ns: &str, pod: &str, job: &str) -> String {
    let pod = match fx.pods(ns).get_opt(pod).await {
        Ok(Some(p)) => pod_summary(&p),
        Ok(None) => "gone".into(),
        Err(e) => format!("unreadable: {e}"),
    };
    let job = match kube::Api::<k8s_openapi::api::batch::v1::Job>::namespaced(fx.client(), ns)
        .get_opt(job)
        .await
    {
        Ok(Some(j)) => {
            let st = j.status.unwrap_or_default();
            let conditions: Vec<String> = st
                .conditions
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.status == "True")
                .map(|c| c.type_)
                .collect();
            format!(
                "Job {job}: active {}, succeeded {}, failed {}, conditions {conditions:?}",
                st.active.unwrap_or(0),
                st.succeeded.unwrap_or(0),
                st.failed.unwrap_or(0)
            )
        }
        Ok(None) => format!("Job {job} gone"),
        Err(e) => format!("Job {job} unreadable: {e}"),
    };
    format!("lost pod: {pod}; {job}")
}

/// How a worker pod is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// The Eviction API (a drain, the cluster autoscaler, a spot reclaim).
    Evicted,
    /// `kubectl delete pod`.
    Deleted,
    /// Its process SIGKILLed (as the OOM killer or a crash ends it).
    Killed,
}

impl Loss {
    fn word(self) -> &'static str {
        match self {
            Loss::Evicted => "evicted",
            Loss::Deleted => "deleted",
            Loss::Killed => "killed",
        }
    }
}

/// The worker Job and pods of test `name` now, in one line.
async fn workers_now(fx: &RealNodeFixture, ns: &str, name: &str) -> String {
    match fx.role_pods(ns, name, "worker").await {
        Ok(pods) => pods.iter().map(pod_summary).collect::<Vec<_>>().join("; "),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Creates test `name` (the `files` locustfile for 60 s) and waits until it
/// runs with both workers connected.
async fn start_with_two_workers(fx: &RealNodeFixture, ns: &str, name: &str) -> Result<()> {
    fx.create_test(ns, name, locust_spec("files", "60s", json!({})))
        .await?;
    let started = "running with 2 workers connected";
    wait_two_workers(fx, ns, name, started, Duration::from_secs(120)).await
}

/// Waits (up to `timeout`) until test `name` runs with 2 workers connected;
/// `what` says what that shows.
async fn wait_two_workers(
    fx: &RealNodeFixture,
    ns: &str,
    name: &str,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    fx.wait_test(ns, name, what, timeout, |t| {
        fixture::running_with_workers(t, 2)
    })
    .await
    .map(drop)
}

/// One worker of test `name` lost mid-run, as `loss` says, and what follows,
/// as docs/status.md says: an evicted or deleted worker exits 0 on Locust's
/// SIGTERM handling, so the worker Job counts it as done and does not replace
/// it; the test keeps Running with one worker (the master counts 1,
/// `WorkersConnected` False "1/2"). A killed worker fails (exit 137): the Job
/// replaces it and the replacement connects. Every run ends Succeeded.
async fn lose_a_worker(fx: &RealNodeFixture, ns: &str, name: &str, loss: Loss) -> Result<String> {
    let what = loss.word();
    start_with_two_workers(fx, ns, name).await?;
    let workers = fx
        .wait_role_running(ns, name, "worker", 2, Duration::from_secs(30))
        .await?;
    let victim = workers[0].name_any();
    let pods = fx.pods(ns);
    let lost_at = Instant::now();
    match loss {
        Loss::Evicted => {
            pods.evict(&victim, &EvictParams::default()).await?;
        }
        Loss::Deleted => {
            pods.delete(&victim, &DeleteParams::default()).await?;
        }
        Loss::Killed => {
            let id = workers[0]
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .and_then(|c| c.container_id.as_deref())
                .and_then(|id| id.strip_prefix("containerd://"))
                .context("the victim's containerd id")?
                .to_owned();
            fx.cluster
                .node_ctr(&["task", "kill", "--signal", "SIGKILL", &id])?;
        }
    }
    let job = format!("{name}-worker");
    let outcome = match loss {
        Loss::Evicted | Loss::Deleted => {
            // The master counts one worker, the test stays Running...
            let one = fx
                .wait_test(
                    ns,
                    name,
                    "Running with 1/2 workers connected",
                    Duration::from_secs(60),
                    |t| {
                        phase(t) == Some(Phase::Running)
                            && t.status
                                .as_ref()
                                .is_some_and(|s| s.connected_workers == Some(1))
                            && fixture::condition(t, ct::WORKERS_CONNECTED).is_some_and(
                                |(s, _, m)| s == "False" && m.starts_with("1/2 workers"),
                            )
                    },
                )
                .await;
            if let Err(e) = one {
                let now = workers_now(fx, ns, name).await;
                return Err(e.context(format!("{name}: after the {what} worker: {now}")));
            }
            let counted_after = lost_at.elapsed();
            // ...and no replacement starts: the lost pod ended Succeeded
            // (exit 0) or is gone, and one worker runs, for 15 s.
            let settle = Instant::now();
            while settle.elapsed() < Duration::from_secs(15) {
                let now = fx.role_pods(ns, name, "worker").await?;
                let others = now.iter().filter(|p| p.name_any() != victim).count();
                ensure!(
                    others == 1,
                    "{name}: {others} other worker pods after the {what} worker (docs: not \
                     replaced): {}",
                    workers_now(fx, ns, name).await
                );
                tokio::time::sleep(fixture::POLL).await;
            }
            format!(
                "master counts 1/2 workers {:.1}s after the loss, no replacement in 15 s; {}",
                counted_after.as_secs_f64(),
                loss_report(fx, ns, &victim, &job).await
            )
        }
        Loss::Killed => {
            let victim_ref = &victim;
            let replaced = wait_for(Duration::from_secs(60), fixture::POLL, || async move {
                let now = fx.role_pods(ns, name, "worker").await?;
                let running: Vec<String> = now
                    .iter()
                    .filter(|p| p.name_any() != *victim_ref && pod_running(p))
                    .map(|p| p.name_any())
                    .collect();
                Ok((running.len() == 2).then_some(running))
            })
            .await;
            let replaced_after = lost_at.elapsed();
            let loss_seen = loss_report(fx, ns, &victim, &job).await;
            let replaced = replaced.with_context(|| {
                format!(
                    "{name}: the killed worker {victim} was not replaced within 60 s; {loss_seen}"
                )
            })?;
            let connected = "the replacement connected";
            wait_two_workers(fx, ns, name, connected, Duration::from_secs(60)).await?;
            format!(
                "replacement {replaced:?} running after {:.1}s, connected (master counts 2) \
                 after {:.1}s; {loss_seen}",
                replaced_after.as_secs_f64(),
                lost_at.elapsed().as_secs_f64()
            )
        }
    };
    let done = fx.wait_terminal(ns, name, Duration::from_secs(180)).await?;
    ensure!(
        phase(&done) == Some(Phase::Succeeded),
        "{name}: phase {:?}: {:?}",
        phase(&done),
        done.status
    );
    let code = fx.master_exit_code(ns, name).await?;
    ensure!(code == Some(0), "{name}: master exit code {code:?}");
    let requests = done
        .status
        .as_ref()
        .and_then(|s| s.result.as_ref())
        .and_then(|r| r.total_requests)
        .unwrap_or_default();
    ensure!(requests > 0, "{name}: no requests in the result");
    Ok(format!(
        "FIGURE {what} worker pod: {outcome}; the run Succeeded ({requests} requests, master exit 0)"
    ))
}

/// A pod lost mid-run: a worker (as [`Loss`] says) or the master (evicted or
/// deleted).
#[derive(Clone, Copy, Debug)]
enum Lost {
    Worker(Loss),
    Master { evict: bool },
}

/// Boots the real node for `test`, prepares namespace `ns` (a target and a
/// locustfile), loses a pod in each of `cases` (one test each, all at once),
/// prints each outcome's FIGURE line and fails with every error.
async fn run_losses(test: &str, fixture: &str, ns: &str, cases: &[(&str, Lost)]) -> Result<()> {
    RealNodeFixture::run(
        test,
        fixture,
        &["--pod-cpu-request=100m"],
        &[ns],
        async |fx| {
            fx.namespace(ns, &[]).await?;
            fx.start_target(ns, None).await?;
            fx.locustfile(ns, "files", &locustfile("", "\"/\"")).await?;
            let outcomes = futures::future::join_all(cases.iter().map(|(name, lost)| async move {
                match *lost {
                    Lost::Worker(loss) => lose_a_worker(fx, ns, name, loss).await,
                    Lost::Master { evict } => lose_the_master(fx, ns, name, evict).await,
                }
            }))
            .await;
            let mut errors = Vec::new();
            for outcome in outcomes {
                match outcome {
                    Ok(line) => eprintln!("{line}"),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            ensure!(errors.is_empty(), "{}", errors.join("\n"));
            Ok(())
        },
    )
    .await
}

/// (j) Worker pods lost mid-run, three tests at once: one evicted (the
/// Eviction API, as a drain or a spot reclaim does), one deleted, one
/// SIGKILLed; each as [`lose_a_worker`] says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_lost_workers_end_as_documented() -> Result<()> {
    run_losses(
        "real_node_lost_workers_end_as_documented",
        "real-lost-workers",
        "lost",
        &[
            ("evicted", Lost::Worker(Loss::Evicted)),
            ("deleted", Lost::Worker(Loss::Deleted)),
            ("killed", Lost::Worker(Loss::Killed)),
        ],
    )
    .await
}

/// One master lost mid-run (evicted, or deleted): Locust exits 0 on the
/// SIGTERM, so the master Job may even complete, but the test must end
/// `Failed`, `TestCompleted` reason `MasterLost`, the message saying how.
async fn lose_the_master(
    fx: &RealNodeFixture,
    ns: &str,
    name: &str,
    evict: bool,
) -> Result<String> {
    let what = if evict { "evicted" } else { "deleted" };
    start_with_two_workers(fx, ns, name).await?;
    let master = fx.role_pods(ns, name, "master").await?[0].name_any();
    let lost_at = Instant::now();
    if evict {
        fx.pods(ns).evict(&master, &EvictParams::default()).await?;
    } else {
        fx.pods(ns)
            .delete(&master, &DeleteParams::default())
            .await?;
    }
    let done = fx.wait_terminal(ns, name, Duration::from_secs(90)).await?;
    let took = lost_at.elapsed();
    let loss = loss_report(fx, ns, &master, &format!("{name}-master")).await;
    let (_, reason, message) = fixture::condition(&done, ct::TEST_COMPLETED).unwrap_or_default();
    let how = if evict {
        "was disrupted (EvictionByEvictionAPI"
    } else {
        "was deleted"
    };
    ensure!(
        phase(&done) == Some(Phase::Failed)
            && reason == "MasterLost"
            && message.contains(&format!("pod {master} {how}")),
        "the {what} master ended the test {:?}/{reason} after {:.1}s (docs: Failed/MasterLost, \
         \"pod {master} {how}\"): {message}; {loss}",
        phase(&done),
        took.as_secs_f64(),
    );
    Ok(format!(
        "FIGURE {what} master pod: test Failed/{reason} {:.1}s after the loss: {message}; {loss}",
        took.as_secs_f64()
    ))
}

/// The master pod evicted, and in a second test deleted, mid-run: each test
/// ends `Failed`/`MasterLost` (docs/status.md), never a false `Succeeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_lost_master_fails_the_test() -> Result<()> {
    run_losses(
        "real_node_lost_master_fails_the_test",
        "real-lost-master",
        "lost-master",
        &[
            ("evicted-master", Lost::Master { evict: true }),
            ("deleted-master", Lost::Master { evict: false }),
        ],
    )
    .await
}
