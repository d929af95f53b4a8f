//! Where the time goes on a REAL node, from creating a LocustTest to every
//! worker connected and to the run's end: the operator (a process) creates
//! the Service and Jobs, the Job controller the pods, the scheduler binds
//! them, the kubelet starts real containers (the Locust image is already in
//! containerd: imported at node start, checked below), Locust starts, the
//! workers connect to the master through its Service's DNS name, the run
//! runs (`--run-time 10s`), the master lingers (`--autoquit 10`) and exits,
//! and the operator writes the final phase.
//!
//! The test polls every 100 ms with its own clock (Kubernetes timestamps
//! have one-second resolution): the pods (API), the master's
//! `/stats/requests` (port 8089 of the master pod, from inside the
//! cluster's network namespace) and the LocustTest. Each milestone is the
//! first poll that saw it. Lines starting `FIGURE ` give every run and the
//! median over the runs (`LOCUST_TIMING_RUNS`, default 3; runs one after the
//! other in one cluster).
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use locust_operator::api::Phase;
use locust_operator::stats;
use olm_tests::fixture::{self, RealNodeFixture, locust_spec};
use olm_tests::images::locust_image;
use olm_tests::locust::LOCUSTFILE;
use serde_json::json;

const TICK: Duration = Duration::from_millis(100);
const BOUND: Duration = Duration::from_secs(240);

/// The milestones, in the order they happen.
const MILESTONES: [&str; 11] = [
    "Jobs created",
    "pods created",
    "pods scheduled",
    "containers running",
    "master web port answers",
    "operator: Running",
    "workers connected",
    "users running",
    "run stopped",
    "master exited",
    "operator: Succeeded",
];

fn scheduled(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// One run: creates test `name` and records when each milestone was first
/// seen, relative to the creation.
async fn one_run(
    fx: &RealNodeFixture,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<&'static str, Duration>> {
    let mut seen: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let spec = locust_spec("locustfile", "10s", json!({}));
    let tests = fx.tests(ns);
    let jobs: Api<Job> = Api::namespaced(fx.client(), ns);
    let selector = format!(
        "{}={}",
        locust_operator::resources::labels::LABEL_TEST_NAME,
        name
    );
    let t0 = Instant::now();
    fx.create_test(ns, name, spec).await?;
    let mark = |seen: &mut BTreeMap<&'static str, Duration>, what: &'static str, cond: bool| {
        if cond && !seen.contains_key(what) {
            seen.insert(what, t0.elapsed());
        }
    };
    loop {
        ensure!(
            t0.elapsed() < BOUND,
            "{name}: not finished after {BOUND:?}; seen so far: {seen:?}"
        );
        if !seen.contains_key("Jobs created") {
            let jobs = jobs.list(&ListParams::default().labels(&selector)).await?;
            mark(&mut seen, "Jobs created", jobs.items.len() == 2);
        }
        let pods = fx.cluster.list_pods(ns, &selector).await?;
        let ours: Vec<&Pod> = pods.iter().collect();
        mark(&mut seen, "pods created", ours.len() == 3);
        mark(
            &mut seen,
            "pods scheduled",
            ours.len() == 3 && ours.iter().all(|p| scheduled(p)),
        );
        mark(
            &mut seen,
            "containers running",
            ours.len() == 3
                && ours
                    .iter()
                    .all(|p| fixture::container_running(p) || fixture::exit_code(p).is_some()),
        );
        let master = ours.iter().find(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(locust_operator::resources::labels::LABEL_COMPONENT))
                .map(String::as_str)
                == Some("master")
        });
        if let Some(master) = master {
            mark(
                &mut seen,
                "master exited",
                fixture::exit_code(master).is_some(),
            );
            if let Ok(ip) = fixture::pod_ip(master)
                && !seen.contains_key("master exited")
                && let Ok((200, body)) = fx
                    .cluster
                    .http_get(SocketAddr::new(ip, 8089), "/stats/requests")
                    .await
            {
                mark(&mut seen, "master web port answers", true);
                if let Ok(s) = stats::parse_requests_json(body.as_bytes()) {
                    mark(&mut seen, "workers connected", s.worker_count == Some(2));
                    let state = s.state.as_deref().unwrap_or_default();
                    mark(
                        &mut seen,
                        "users running",
                        state == "running" && s.user_count == Some(4),
                    );
                    mark(&mut seen, "run stopped", state == "stopped");
                }
            }
        }
        let t = tests.get(name).await?;
        let phase = fixture::phase(&t);
        mark(&mut seen, "operator: Running", phase.is_some());
        if phase == Some(Phase::Pending) {
            seen.remove("operator: Running");
        }
        if let Some(p) = phase.filter(|p| p.is_terminal()) {
            ensure!(p == Phase::Succeeded, "{name}: {p:?}: {:?}", t.status);
            mark(&mut seen, "operator: Succeeded", true);
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    for m in MILESTONES {
        ensure!(
            seen.contains_key(m),
            "{name}: milestone {m:?} never seen: {seen:?}"
        );
    }
    Ok(seen)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_timing() -> Result<()> {
    let runs: usize = std::env::var("LOCUST_TIMING_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(3);
    let (test, ns) = ("real_node_timing", "timing");
    RealNodeFixture::run(test, "real-timing", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        fx.start_target(ns, None).await?;
        fx.locustfile(ns, "locustfile", LOCUSTFILE).await?;
        // The image is in containerd already (imported when the node started).
        let listed = fx.cluster.node_ctr(&["images", "ls", "-q"])?;
        ensure!(
            listed.lines().any(|l| l.trim() == locust_image()),
            "{} is not in the node's containerd:\n{listed}",
            locust_image()
        );
        eprintln!(
            "FIGURE real node: cluster ready in {:.1}s, operator ready {:.2}s later; {} \
             already in containerd (imported at node start, never pulled)",
            fx.cluster_startup.as_secs_f64(),
            fx.operator_ready.as_secs_f64(),
            locust_image()
        );
        let mut all: Vec<BTreeMap<&'static str, Duration>> = Vec::new();
        for i in 0..runs {
            let name = format!("timing-{i}");
            let seen = one_run(fx, ns, &name).await?;
            let line: Vec<String> = MILESTONES
                .iter()
                .map(|m| format!("{m} {:.2}s", seen[m].as_secs_f64()))
                .collect();
            eprintln!("FIGURE run {i}: {}", line.join(", "));
            all.push(seen);
        }
        // Every Locust pod's image was found on the node, not pulled.
        let events = Api::<Event>::namespaced(fx.client(), ns)
            .list(&ListParams::default())
            .await?;
        let pulled: Vec<&str> = events
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Pulled"))
            .filter_map(|e| e.message.as_deref())
            .filter(|m| m.contains(&locust_image()))
            .collect();
        ensure!(
            pulled.len() >= 3 * runs
                && pulled
                    .iter()
                    .all(|m| m.contains("already present on machine")),
            "Pulled events: {pulled:?}"
        );
        let med = |m: &str| median(all.iter().map(|s| s[m]).collect());
        let step = |from: &str, to: &str| {
            median(all.iter().map(|s| s[to].saturating_sub(s[from])).collect())
        };
        eprintln!(
            "FIGURE median of {runs} runs (from creating the LocustTest): {}",
            MILESTONES
                .iter()
                .map(|m| format!("{m} {:.2}s", med(m).as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        eprintln!(
            "FIGURE median steps: create→Jobs created {:.2}s, Jobs→pods scheduled {:.2}s, \
             scheduled→containers running \
             {:.2}s, running→Locust web port answers {:.2}s, web port→workers connected {:.2}s, \
             workers connected→users running {:.2}s, users running→run stopped {:.2}s \
             (--run-time 10s), stopped→master exited {:.2}s (--autoquit 10), master \
             exited→operator Succeeded {:.2}s",
            med("Jobs created").as_secs_f64(),
            step("Jobs created", "pods scheduled").as_secs_f64(),
            step("pods scheduled", "containers running").as_secs_f64(),
            step("containers running", "master web port answers").as_secs_f64(),
            step("master web port answers", "workers connected").as_secs_f64(),
            step("workers connected", "users running").as_secs_f64(),
            step("users running", "run stopped").as_secs_f64(),
            step("run stopped", "master exited").as_secs_f64(),
            step("master exited", "operator: Succeeded").as_secs_f64(),
        );
        Ok(())
    })
    .await
}
