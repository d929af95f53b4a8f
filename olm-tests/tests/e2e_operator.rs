//! End to end: the real operator binary, under its own ServiceAccount and the
//! generated RBAC, against a real kube-apiserver, controller-manager, scheduler
//! and kwok nodes. Scenarios run concurrently in their own namespaces against
//! one operator, as tests of several teams would in a shared cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, LocustTestStatus, Phase, condition_type as ct};
use olm_tests::checks::events_for;
use olm_tests::operator::{self, OperatorProcess};
use olm_tests::{Cluster, e2e, wait_for};

const T: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
const GRACE: &str = "6s";

fn sample_v2(name: &str) -> Result<LocustTest> {
    olm_tests::checks::sample(name)
}

async fn sample_configmap(client: &Client, ns: &str) -> Result<()> {
    let path = operator::workspace_root().join("operator/samples/demo-locustfile.yaml");
    let cm: ConfigMap = olm_tests::yaml::from_str(&std::fs::read_to_string(&path)?)?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The admin client and the LocustTests of `ns`, set up by [`setup_ns`].
async fn test_namespace(cluster: &Cluster, ns: &str) -> Result<(Client, Api<LocustTest>)> {
    let client = cluster.admin_client();
    setup_ns(&client, ns).await?;
    let tests = Api::namespaced(client.clone(), ns);
    Ok((client, tests))
}

/// [`test_namespace`] holding the sample test `name`, as created.
async fn namespace_with_sample(
    cluster: &Cluster,
    ns: &str,
    name: &str,
) -> Result<(Client, Api<LocustTest>, LocustTest)> {
    let (client, tests) = test_namespace(cluster, ns).await?;
    let created = tests
        .create(&PostParams::default(), &sample_v2(name)?)
        .await?;
    Ok((client, tests, created))
}

async fn setup_ns(client: &Client, ns: &str) -> Result<()> {
    operator::create_namespace(
        client,
        ns,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await?;
    sample_configmap(client, ns).await
}

fn cond<'a>(st: &'a LocustTestStatus, ty: &str) -> Option<&'a Condition> {
    st.conditions.iter().find(|c| c.type_ == ty)
}

/// Waits until the test's status satisfies `f`; returns the test.
async fn wait_status(
    api: &Api<LocustTest>,
    name: &str,
    what: &str,
    f: impl Fn(&LocustTestStatus) -> bool,
) -> Result<LocustTest> {
    let f = &f;
    let res = wait_for(T, POLL, || async move {
        let t = api.get(name).await?;
        Ok(t.status.as_ref().is_some_and(f).then_some(t))
    })
    .await;
    match res {
        Ok(t) => Ok(t),
        Err(e) => {
            let last = api.get(name).await.ok().and_then(|t| t.status);
            Err(e.context(format!("{name}: waiting for {what}; last status: {last:?}")))
        }
    }
}

/// Waits until test `name`'s PodsHealthy condition is False; returns it.
async fn wait_pods_unhealthy(api: &Api<LocustTest>, name: &str) -> Result<Condition> {
    let t = wait_status(api, name, "PodsHealthy=False", |s| {
        cond(s, ct::PODS_HEALTHY).is_some_and(|c| c.status == "False")
    })
    .await?;
    cond(t.status.as_ref().context("status")?, ct::PODS_HEALTHY)
        .cloned()
        .context("cond")
}

async fn wait_phase(api: &Api<LocustTest>, name: &str, phase: Phase) -> Result<LocustTest> {
    wait_status(api, name, &format!("phase {phase}"), |s| {
        s.phase == Some(phase)
    })
    .await
}

async fn wait_event(client: &Client, ns: &str, name: &str, reason: &str) -> Result<Event> {
    wait_for(T, POLL, || async move {
        Ok(events_for(client, ns, name)
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason)))
    })
    .await
    .with_context(|| format!("{ns}/{name}: waiting for Event {reason}"))
}

async fn pod_names(
    cluster: &Cluster,
    ns: &str,
    selector: &str,
    count: usize,
) -> Result<Vec<String>> {
    let pods = cluster
        .wait_for_running_pods(ns, selector, count, T)
        .await?;
    Ok(pods.iter().map(|p| p.name_any()).collect())
}

/// Pending → Running → Succeeded with the exact children, then deletion
/// cascades through the garbage collector.
async fn happy_path(cluster: &Cluster) -> Result<()> {
    let ns = "e2e-happy";
    let (client, tests, created) = namespace_with_sample(cluster, ns, "demo").await?;
    let uid = created.uid().context("uid")?;

    // Children: exactly one Service and two Jobs, owned by the test.
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let master = wait_for(T, POLL, || async { Ok(jobs.get_opt("demo-master").await?) }).await?;
    let worker = wait_for(T, POLL, || async { Ok(jobs.get_opt("demo-worker").await?) }).await?;
    let svc = wait_for(T, POLL, || async {
        Ok(services.get_opt("demo-master").await?)
    })
    .await?;
    for (kind, refs) in [
        ("master Job", master.owner_references()),
        ("worker Job", worker.owner_references()),
        ("Service", svc.owner_references()),
    ] {
        ensure!(
            refs.len() == 1
                && refs[0].uid == uid
                && refs[0].controller == Some(true)
                && refs[0].kind == "LocustTest",
            "{kind} owner references: {refs:?}"
        );
    }
    let owned = ListParams::default().labels("app.kubernetes.io/instance=demo");
    ensure!(
        jobs.list(&owned).await?.items.len() == 2,
        "exactly two Jobs"
    );
    ensure!(
        services.list(&owned).await?.items.len() == 1,
        "exactly one Service"
    );

    // Not OpenShift: the official image's non-numeric USER gets its UID.
    let run_as_user = master
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.security_context.as_ref())
        .and_then(|c| c.run_as_user);
    ensure!(
        run_as_user == Some(1000),
        "pods run as UID 1000 on a cluster that is not OpenShift: {run_as_user:?}"
    );

    let container = |j: &Job| {
        j.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].clone())
            .context("container")
    };
    let expect_args = |c: &Container, role: &str, expected: &[&str]| -> Result<()> {
        ensure!(
            c.args.as_deref().is_some_and(|args| args == expected),
            "{role} args {:?}",
            c.args
        );
        Ok(())
    };
    let mc = container(&master)?;
    expect_args(
        &mc,
        "master",
        &[
            "--locustfile",
            "/lotest/src/locustfile.py",
            "--host",
            "http://demo-target:8080",
            "--users",
            "10",
            "--spawn-rate",
            "5",
            "--run-time",
            "30s",
            "--master",
            "--master-port=5557",
            "--expect-workers=2",
            "--autostart",
            "--autoquit",
            "30",
            "--enable-rebalancing",
            "--only-summary",
        ],
    )?;
    ensure!(mc.command.is_none(), "seed form keeps the image entrypoint");
    expect_args(
        &container(&worker)?,
        "worker",
        &[
            "--locustfile",
            "/lotest/src/locustfile.py",
            "--worker",
            "--master-host=demo-master",
            "--master-port=5557",
        ],
    )?;
    let mounts = mc.volume_mounts.unwrap_or_default();
    ensure!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/lotest/src" && m.name == "locust-src"),
        "test files mounted: {mounts:?}"
    );
    ensure!(
        worker.spec.as_ref().and_then(|s| s.parallelism) == Some(2),
        "worker parallelism"
    );
    let ports: Vec<i32> = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .iter()
        .map(|p| p.port)
        .collect();
    ensure!(ports == vec![5557, 5558, 8089], "service ports {ports:?}");

    // Pods pass restricted PodSecurity admission and run on kwok nodes.
    let master_pods = pod_names(cluster, ns, "job-name=demo-master", 1).await?;
    pod_names(cluster, ns, "job-name=demo-worker", 2).await?;

    let running = wait_status(&tests, "demo", "Running with 2 connected workers", |s| {
        s.phase == Some(Phase::Running) && s.connected_workers == Some(2)
    })
    .await?;
    let st = running.status.clone().context("status")?;
    ensure!(st.start_time.is_some(), "startTime set");
    ensure!(st.expected_workers == Some(2));
    ensure!(
        cond(&st, ct::READY)
            .is_some_and(|c| c.status == "True" && c.reason == "AllResourcesCreated")
    );
    ensure!(
        cond(&st, ct::WORKERS_CONNECTED)
            .is_some_and(|c| c.status == "True" && c.message == "2/2 workers connected")
    );
    ensure!(
        cond(&st, ct::TEST_COMPLETED)
            .is_some_and(|c| c.status == "False" && c.reason == "TestInProgress")
    );
    ensure!(cond(&st, ct::PODS_HEALTHY).is_some_and(|c| c.status == "True"));
    ensure!(cond(&st, ct::SPEC_DRIFTED).is_some_and(|c| c.status == "False"));

    // Nothing changes → the operator writes nothing.
    let rv = running.resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = tests.get("demo").await?;
    ensure!(
        again.resource_version() == rv,
        "status rewritten while nothing changed: {:?}",
        again.status
    );

    // The master finishes → Succeeded.
    cluster.complete_pod(ns, &master_pods[0], 0).await?;
    let done = wait_phase(&tests, "demo", Phase::Succeeded).await?;
    let st = done.status.context("status")?;
    ensure!(st.completion_time.is_some(), "completionTime");
    ensure!(
        st.completion_time >= st.start_time,
        "completion after start"
    );
    ensure!(
        cond(&st, ct::TEST_COMPLETED)
            .is_some_and(|c| c.status == "True" && c.reason == "TestSucceeded")
    );
    for reason in ["Created", "TestStarted", "TestSucceeded"] {
        wait_event(&client, ns, "demo", reason).await?;
    }

    // A terminal test is left alone: a child deleted now is not recreated.
    jobs.delete("demo-worker", &DeleteParams::background())
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        jobs.get_opt("demo-worker").await?.is_none(),
        "terminal test's child recreated"
    );
    ensure!(tests.get("demo").await?.status.and_then(|s| s.phase) == Some(Phase::Succeeded));

    // Deleting the test removes everything (garbage collector, no finalizer).
    tests.delete("demo", &DeleteParams::background()).await?;
    wait_for(T, POLL, || async {
        let left = jobs.list(&owned).await?.items.len()
            + services.list(&owned).await?.items.len()
            + Api::<Pod>::namespaced(client.clone(), ns)
                .list(&owned)
                .await?
                .items
                .len()
            + usize::from(tests.get_opt("demo").await?.is_some());
        Ok((left == 0).then_some(()))
    })
    .await
    .context("garbage collection of the test's children")?;
    Ok(())
}

/// A master that exits non-zero fails the test with the exit code in the message.
async fn master_fails(cluster: &Cluster) -> Result<()> {
    let ns = "e2e-fail";
    let (client, tests, _) = namespace_with_sample(cluster, ns, "boom").await?;
    let master = pod_names(cluster, ns, "job-name=boom-master", 1).await?;
    wait_phase(&tests, "boom", Phase::Running).await?;
    cluster.complete_pod(ns, &master[0], 3).await?;
    let t = wait_phase(&tests, "boom", Phase::Failed).await?;
    let st = t.status.context("status")?;
    let tc = cond(&st, ct::TEST_COMPLETED).context("TestCompleted")?;
    ensure!(tc.status == "True" && tc.reason == "TestFailed", "{tc:?}");
    ensure!(
        tc.message.contains("exited with code 3"),
        "message: {}",
        tc.message
    );
    let ev = wait_event(&client, ns, "boom", "TestFailed").await?;
    ensure!(ev.type_.as_deref() == Some("Warning"));
    Ok(())
}

/// A pod stuck on `reason` turns PodsHealthy False (naming the pod) and the
/// test Failed after the grace period.
async fn unhealthy(
    cluster: &Cluster,
    ns: &str,
    reason: &str,
    message: &str,
    expect: &str,
) -> Result<()> {
    let (client, tests, _) = namespace_with_sample(cluster, ns, "sick").await?;
    let master = cluster
        .wait_for_pods(ns, "job-name=sick-master", T, |p| p.len() == 1)
        .await?
        .remove(0)
        .name_any();
    cluster
        .set_pod_waiting(ns, &master, reason, message)
        .await?;
    let ph = wait_pods_unhealthy(&tests, "sick").await?;
    ensure!(
        ph.reason == expect,
        "{ns}: reason {} != {expect}",
        ph.reason
    );
    ensure!(
        ph.message.contains(&master) && ph.message.contains(message),
        "{ns}: message {}",
        ph.message
    );
    wait_event(&client, ns, "sick", "PodsUnhealthy").await?;
    let failed = wait_phase(&tests, "sick", Phase::Failed).await?;
    let tc = cond(
        failed.status.as_ref().context("status")?,
        ct::TEST_COMPLETED,
    )
    .cloned()
    .context("cond")?;
    ensure!(
        tc.reason == "PodsUnhealthy" && tc.message.contains(&master),
        "{ns}: {tc:?}"
    );
    Ok(())
}

/// Really unschedulable (the scheduler says so): a nodeSelector no node matches.
async fn unschedulable(cluster: &Cluster) -> Result<()> {
    let ns = "e2e-unschedulable";
    let (_, tests) = test_namespace(cluster, ns).await?;
    let mut t = sample_v2("nowhere")?;
    t.spec.scheduling = Some(locust_operator::api::v2::SchedulingSpec {
        node_selector: BTreeMap::from([("disktype".to_owned(), "unobtainium".to_owned())]),
        ..Default::default()
    });
    tests.create(&PostParams::default(), &t).await?;
    let ph = wait_pods_unhealthy(&tests, "nowhere").await?;
    ensure!(ph.reason == "Unschedulable", "{ph:?}");
    ensure!(
        ph.message.contains("node(s) didn't match") || ph.message.contains("nodes are available"),
        "{}",
        ph.message
    );
    wait_phase(&tests, "nowhere", Phase::Failed).await?;
    Ok(())
}

/// A child deleted mid-run is recreated with a Warning; a spec change is
/// reported (SpecDrifted) and changes nothing.
async fn recreate_and_drift(cluster: &Cluster) -> Result<()> {
    let ns = "e2e-drift";
    let (client, tests, _) = namespace_with_sample(cluster, ns, "steady").await?;
    pod_names(cluster, ns, "job-name=steady-worker", 2).await?;
    wait_phase(&tests, "steady", Phase::Running).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);

    let old_svc = services.get("steady-master").await?.uid();
    services
        .delete("steady-master", &DeleteParams::background())
        .await?;
    let new_svc = wait_for(T, POLL, || async {
        Ok(services
            .get_opt("steady-master")
            .await?
            .filter(|s| s.uid() != old_svc))
    })
    .await
    .context("Service recreated")?;
    ensure!(new_svc.owner_references().len() == 1);
    let ev = wait_event(&client, ns, "steady", "ChildRecreated").await?;
    ensure!(ev.type_.as_deref() == Some("Warning"));

    let before_worker = jobs.get("steady-worker").await?;
    let patch = serde_json::json!({"spec": {"worker": {"replicas": 5}}});
    tests
        .patch("steady", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let t = wait_status(&tests, "steady", "SpecDrifted=True", |s| {
        cond(s, ct::SPEC_DRIFTED).is_some_and(|c| c.status == "True" && c.reason == "SpecChanged")
    })
    .await?;
    ensure!(t.status.as_ref().and_then(|s| s.observed_generation) == t.metadata.generation);
    wait_event(&client, ns, "steady", "SpecDrifted").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_worker = jobs.get("steady-worker").await?;
    ensure!(
        after_worker.uid() == before_worker.uid(),
        "worker Job replaced"
    );
    ensure!(
        after_worker.spec.as_ref().and_then(|s| s.parallelism) == Some(2),
        "worker Job changed"
    );
    ensure!(
        t.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running),
        "phase unchanged"
    );
    Ok(())
}

/// A Service the test did not create holds its master Service's name: the
/// reconcile fails with `NameConflict`, reported once as a Warning Event on
/// the test that names the Service (the operator retries and stays quiet).
async fn name_conflict(cluster: &Cluster) -> Result<()> {
    let ns = "e2e-conflict";
    let (client, tests) = test_namespace(cluster, ns).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let squatter: Service = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "clash-master",
            "labels": { "app.kubernetes.io/managed-by": "locust-k8s-operator" },
        },
        "spec": { "ports": [{ "port": 5557 }] },
    }))?;
    services.create(&PostParams::default(), &squatter).await?;
    tests
        .create(&PostParams::default(), &sample_v2("clash")?)
        .await?;
    let ev = wait_event(&client, ns, "clash", "NameConflict").await?;
    ensure!(ev.type_.as_deref() == Some("Warning"), "{ev:?}");
    let note = ev.note.clone().unwrap_or_default();
    ensure!(
        note.contains("clash-master") && note.contains("not owned"),
        "note: {note}"
    );
    // Later reconciles (one is triggered by touching the test) fail the same
    // way; the Event is not repeated.
    let touch = serde_json::json!({"metadata": {"labels": {"touched": "yes"}}});
    tests
        .patch("clash", &PatchParams::default(), &Patch::Merge(&touch))
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let conflicts: Vec<Event> = events_for(&client, ns, "clash")
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("NameConflict"))
        .collect();
    ensure!(
        conflicts.len() == 1 && conflicts[0].series.as_ref().is_none_or(|s| s.count <= 1),
        "NameConflict Events: {conflicts:?}"
    );
    let svc = services.get("clash-master").await?;
    ensure!(
        svc.owner_references().is_empty(),
        "the Service was left alone"
    );
    Ok(())
}

async fn scenario(name: &str, fut: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let start = std::time::Instant::now();
    let r = fut.await.with_context(|| format!("scenario {name}"));
    eprintln!(
        "scenario {name}: {} in {:.1}s",
        if r.is_ok() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_end_to_end() -> Result<()> {
    let Some((cluster, kubeconfig)) =
        e2e::operator_cluster("operator_end_to_end", "e2e-operator").await?
    else {
        return Ok(());
    };
    let mut args = operator::single_replica_args();
    args.push(format!("--grace-period={GRACE}"));
    let op = OperatorProcess::spawn(&cluster, &kubeconfig, "e2e", &args)?;
    let ready = op.wait_ready(Duration::from_secs(30)).await?;
    eprintln!("operator ready after {ready:?}");

    // Each scenario boxed: joined inline, their states would sum up on the
    // test thread's stack (debug builds overflow its 2 MiB).
    let results = tokio::join!(
        Box::pin(scenario("happy-path", happy_path(&cluster))),
        Box::pin(scenario("master-fails", master_fails(&cluster))),
        Box::pin(scenario(
            "image-pull",
            unhealthy(
                &cluster,
                "e2e-imagepull",
                "ImagePullBackOff",
                "Back-off pulling image \"locustio/locust:nope\"",
                "ImagePullError"
            )
        )),
        Box::pin(scenario(
            "missing-configmap",
            unhealthy(
                &cluster,
                "e2e-config",
                "CreateContainerConfigError",
                "configmap \"missing-cm\" not found",
                "ConfigError"
            )
        )),
        Box::pin(scenario("unschedulable", unschedulable(&cluster))),
        Box::pin(scenario("recreate-and-drift", recreate_and_drift(&cluster))),
        Box::pin(scenario("name-conflict", name_conflict(&cluster))),
    );
    let errors: Vec<String> = [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6,
    ]
    .into_iter()
    .filter_map(|r| r.err().map(|e| format!("{e:#}")))
    .collect();

    // Metrics reflect the work, and the operator never logged a secret or panicked.
    let metrics = op.metrics().await.unwrap_or_default();
    let log = op.log();
    if !errors.is_empty() {
        cluster.mark_failed();
        bail!(
            "{} scenario(s) failed:\n{}\n--- operator log tail ---\n{}",
            errors.len(),
            errors.join("\n\n"),
            op.log_tail(60)
        );
    }
    ensure!(
        metrics.contains("locust_operator_reconciles_total"),
        "metrics: {metrics}"
    );
    ensure!(!log.contains("panicked"), "operator panicked:\n{log}");
    Ok(())
}

/// The operator's ServiceAccount holds no access it does not use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_minimal() -> Result<()> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let Some((cluster, _)) = e2e::operator_cluster("rbac_is_minimal", "e2e-rbac").await? else {
        return Ok(());
    };
    let client = cluster.admin_client();
    let sar: Api<SubjectAccessReview> = Api::all(client);
    let user = format!(
        "system:serviceaccount:{}:{}",
        operator::OPERATOR_NAMESPACE,
        operator::SERVICE_ACCOUNT
    );
    let check = |group: &str, resource: &str, verb: &str, ns: Option<&str>| {
        let sar = sar.clone();
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    verb: Some(verb.into()),
                    namespace: ns.map(Into::into),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        async move {
            let r = sar.create(&PostParams::default(), &review).await?;
            Ok::<bool, anyhow::Error>(r.status.is_some_and(|s| s.allowed))
        }
    };
    // Needed and granted.
    for (g, r, v) in [
        ("locust.io", "locusttests", "watch"),
        ("locust.io", "locusttests/status", "patch"),
        // The schedule controller: runs created, replaced ones deleted.
        ("locust.io", "locusttests", "create"),
        ("locust.io", "locusttests", "delete"),
        ("locust.io", "locustschedules", "watch"),
        ("locust.io", "locustschedules/status", "patch"),
        ("batch", "jobs", "create"),
        ("", "services", "create"),
        ("", "pods", "list"),
        ("events.k8s.io", "events", "create"),
    ] {
        ensure!(
            check(g, r, v, Some("team-a")).await?,
            "{v} {g}/{r} must be allowed"
        );
    }
    ensure!(
        check(
            "coordination.k8s.io",
            "leases",
            "update",
            Some(operator::OPERATOR_NAMESPACE)
        )
        .await?
    );
    // Not needed, not granted.
    for (g, r, v, ns) in [
        ("", "secrets", "get", Some("team-a")),
        ("", "secrets", "list", Some("team-a")),
        ("", "configmaps", "get", Some("team-a")),
        ("", "configmaps", "list", Some("team-a")),
        ("locust.io", "locusttests", "update", Some("team-a")),
        ("locust.io", "locustschedules", "update", Some("team-a")),
        ("locust.io", "locustschedules", "delete", Some("team-a")),
        ("batch", "jobs", "delete", Some("team-a")),
        ("batch", "jobs", "update", Some("team-a")),
        ("", "pods", "create", Some("team-a")),
        ("", "pods", "delete", Some("team-a")),
        ("coordination.k8s.io", "leases", "update", Some("team-a")),
        ("", "namespaces", "list", None),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "get",
            None,
        ),
    ] {
        ensure!(
            !check(g, r, v, ns).await?,
            "{v} {g}/{r} in {ns:?} must NOT be allowed"
        );
    }
    Ok(())
}
