//! The floor: a plain client (a ServiceAccount, like the operator) creates
//! the children the operator would, on a cluster of its own.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use locust_operator::api::LocustTest;
use locust_operator::config::OperatorConfig;
use locust_operator::resources::{self, labels};

use super::sample::{LoadMeter, LoadSample};
use super::{
    ApiCounts, AuditRecord, BENCH_NAMESPACE, BenchOptions, CreateLatencies, FLOOR_ACCOUNT, Floor,
    audit_records, bench_namespace, count_requests, floor_user, on_own_cluster, warm_up_crd,
};
use crate::cluster::{Cluster, client_from_kubeconfig, pod_running};
use crate::load;
use crate::operator as op;

/// The 3×N children the operator would create for `tests` (existing
/// LocustTests, so the owner references are real ones, with
/// `blockOwnerDeletion`, exactly as the operator's).
fn floor_children(tests: &[LocustTest]) -> Result<Vec<FloorObject>> {
    let config = OperatorConfig::default();
    let mut out = Vec::with_capacity(tests.len() * 3);
    for test in tests {
        let c = resources::build_children(test, &config)?;
        out.push(FloorObject::Service(Box::new(c.service)));
        out.push(FloorObject::Job(Box::new(c.master_job)));
        out.push(FloorObject::Job(Box::new(c.worker_job)));
    }
    Ok(out)
}

enum FloorObject {
    Service(Box<k8s_openapi::api::core::v1::Service>),
    Job(Box<k8s_openapi::api::batch::v1::Job>),
}

/// The audit log's records until now, the end of the window from
/// `window_start` to now, and the floor client's requests in it, once they
/// show the 3 children of each of the `n` tests created and no write failed.
fn floor_audit(
    cluster: &Cluster,
    window_start: Timestamp,
    n: usize,
) -> Result<(Vec<AuditRecord>, Timestamp, ApiCounts)> {
    let records = audit_records(cluster)?;
    let window_end = Timestamp::now();
    let counts = count_requests(&records, &floor_user(), window_start, window_end);
    ensure!(
        counts.child_creates == 3 * n as u64 && counts.failed_writes == 0,
        "the audit log shows {} creates ({} failed) by the floor client, expected {}",
        counts.child_creates,
        counts.failed_writes,
        3 * n
    );
    Ok((records, window_end, counts))
}

/// Creates `object` in [`BENCH_NAMESPACE`] as `admin`.
async fn create_in_bench<K>(admin: &Client, object: K) -> Result<()>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    Api::<K>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .create(&PostParams::default(), &object)
        .await?;
    Ok(())
}

/// A ServiceAccount in [`BENCH_NAMESPACE`] allowed to create Jobs and
/// Services there (and, as the operator, to set `blockOwnerDeletion` on
/// owner references to LocustTests); returns a client authenticated as it.
async fn floor_client(cluster: &Cluster) -> Result<Client> {
    let admin = cluster.admin_client();
    let metadata = ObjectMeta {
        name: Some(FLOOR_ACCOUNT.into()),
        namespace: Some(BENCH_NAMESPACE.into()),
        ..ObjectMeta::default()
    };
    let rule = |group: &str, resource: &str, verb: &str| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: vec![verb.into()],
        ..PolicyRule::default()
    };
    create_in_bench(
        &admin,
        ServiceAccount {
            metadata: metadata.clone(),
            ..ServiceAccount::default()
        },
    )
    .await?;
    create_in_bench(
        &admin,
        Role {
            metadata: metadata.clone(),
            rules: Some(vec![
                rule("batch", "jobs", "create"),
                rule("", "services", "create"),
                rule("locust.io", "locusttests/finalizers", "update"),
            ]),
        },
    )
    .await?;
    create_in_bench(
        &admin,
        RoleBinding {
            metadata,
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: FLOOR_ACCOUNT.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: FLOOR_ACCOUNT.into(),
                namespace: Some(BENCH_NAMESPACE.into()),
                ..Subject::default()
            }]),
        },
    )
    .await?;
    let kubeconfig = cluster
        .service_account_kubeconfig(BENCH_NAMESPACE, FLOOR_ACCOUNT, Duration::from_secs(3600))
        .await?;
    client_from_kubeconfig(&kubeconfig).await
}

/// Waits, with one watch, until `count` pods matching `selector` in `ns` are
/// Running on a node; returns the wait's duration.
async fn wait_pods_running(
    client: &Client,
    ns: &str,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events = watcher(api, watcher::Config::default().labels(selector)).default_backoff();
    futures::pin_mut!(events);
    let mut running: BTreeSet<String> = BTreeSet::new();
    let outcome = tokio::time::timeout(timeout, async {
        let mut synced = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => running.clear(),
                Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p)) => {
                    if pod_running(&p) {
                        running.insert(p.name_any());
                    } else {
                        running.remove(&p.name_any());
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    running.remove(&p.name_any());
                }
                Ok(watcher::Event::InitDone) => synced = true,
                Err(error) => tracing::debug!(%error, "pod watch error (retried)"),
            }
            if synced && running.len() >= count {
                return Ok(());
            }
        }
        bail!("the pod watch ended")
    })
    .await;
    match outcome {
        Ok(r) => r.map(|()| started.elapsed()),
        Err(_) => bail!(
            "timed out after {timeout:?}: {}/{count} pods matching {selector} Running",
            running.len()
        ),
    }
}

/// Waits until the `n` master pods in [`BENCH_NAMESPACE`] are Running.
async fn wait_masters_running(opts: &BenchOptions, client: &Client, n: usize) -> Result<Duration> {
    let selector = format!("{}=master", labels::LABEL_COMPONENT);
    wait_pods_running(client, BENCH_NAMESPACE, &selector, n, opts.wait_bound(n)).await
}

pub(super) async fn measure_floor(opts: &BenchOptions, n: usize) -> Result<Floor> {
    let name = format!("bench-floor-{n}");
    let mut floor = on_own_cluster(opts, n, &name, async |c| floor_run(opts, c, n).await).await?;
    let name = format!("bench-scenario-{n}");
    (floor.scenario, floor.scenario_writes, floor.scenario_load) =
        on_own_cluster(opts, n, &name, async |c| {
            scenario_floor_run(opts, c, n).await
        })
        .await?;
    Ok(floor)
}

/// The scenario floor: the bench creates N LocustTests (admin, `concurrency`
/// in flight, as in the operator's run) and the plain client creates each
/// one's 3 children as soon as it exists (`concurrency` tests at a time,
/// their 3 children at once, as the operator does), until every master pod
/// runs. Returns the time, the audited writes and the CPU.
async fn scenario_floor_run(
    opts: &BenchOptions,
    cluster: &Cluster,
    n: usize,
) -> Result<(Duration, u64, LoadSample)> {
    let admin = cluster.admin_client();
    bench_namespace(&admin).await?;
    let client = floor_client(cluster).await?;
    op::install_crd(&admin, &op::crd_without_webhook(op::bundle_crd()?)).await?;
    warm_up_crd(&admin).await?;
    let names = load::test_names("t", n);
    let tests: Api<LocustTest> = Api::namespaced(admin.clone(), BENCH_NAMESPACE);
    let config = OperatorConfig::default();
    let c = opts.concurrency.max(1);
    let window_start = Timestamp::now();
    let meter = LoadMeter::start(cluster, None);
    let started = Instant::now();
    let running = wait_masters_running(opts, &admin, n);
    let create = async {
        stream::iter(names.iter())
            .map(|name| {
                let tests = tests.clone();
                async move {
                    tests
                        .create(&PostParams::default(), &load::test_object(name))
                        .await
                        .with_context(|| format!("creating LocustTest {name}"))
                }
            })
            .buffer_unordered(c)
            .map_ok(|test| {
                let client = client.clone();
                let config = &config;
                async move {
                    let children = resources::build_children(&test, config)?;
                    let pp = PostParams::default();
                    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
                        Api::namespaced(client.clone(), BENCH_NAMESPACE);
                    let services: Api<k8s_openapi::api::core::v1::Service> =
                        Api::namespaced(client, BENCH_NAMESPACE);
                    let (s, m, w) = tokio::join!(
                        services.create(&pp, &children.service),
                        jobs.create(&pp, &children.master_job),
                        jobs.create(&pp, &children.worker_job),
                    );
                    s?;
                    m?;
                    w?;
                    Ok::<(), anyhow::Error>(())
                }
            })
            .try_buffer_unordered(c)
            .try_collect::<Vec<()>>()
            .await
            .context("the scenario floor")?;
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (created, running) = tokio::join!(create, running);
    let took = running?.max(created?);
    let load = meter.finish();
    let (records, window_end, _) = floor_audit(cluster, window_start, n)?;
    let writes = CreateLatencies::measure(&records, &floor_user(), window_start, window_end).writes;
    Ok((took, writes, load))
}

async fn floor_run(opts: &BenchOptions, cluster: &Cluster, n: usize) -> Result<Floor> {
    let admin = cluster.admin_client();
    bench_namespace(&admin).await?;
    let client = floor_client(cluster).await?;
    // The LocustTests exist (no operator runs here), so the children's owner
    // references are real; created before the measurement starts.
    op::install_crd(&admin, &op::crd_without_webhook(op::bundle_crd()?)).await?;
    let names = load::test_names("t", n);
    load::create_tests(&admin, BENCH_NAMESPACE, &names, opts.concurrency).await?;
    let mut tests = Api::<LocustTest>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .list(&Default::default())
        .await?
        .items;
    ensure!(
        tests.len() == n,
        "{} LocustTests, expected {n}",
        tests.len()
    );
    tests.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let objects = floor_children(&tests)?;
    let window_start = Timestamp::now();
    let meter = LoadMeter::start(cluster, None);
    let started = Instant::now();
    let running = wait_masters_running(opts, &admin, n);
    // The fastest a plain client can go: Jobs and Services in two streams
    // at once (a Service waits for its ClusterIP; the Jobs need not), each
    // with `concurrency` requests in flight.
    let (services, jobs): (Vec<FloorObject>, Vec<FloorObject>) = objects
        .into_iter()
        .partition(|o| matches!(o, FloorObject::Service(_)));
    let create_all = |objects: Vec<FloorObject>| {
        let client = client.clone();
        async move {
            let pp = PostParams::default();
            stream::iter(objects)
                .map(|o| {
                    let api_client = client.clone();
                    let pp = pp.clone();
                    async move {
                        match o {
                            FloorObject::Service(s) => Api::namespaced(api_client, BENCH_NAMESPACE)
                                .create(&pp, &*s)
                                .await
                                .map(drop),
                            FloorObject::Job(j) => Api::namespaced(api_client, BENCH_NAMESPACE)
                                .create(&pp, &*j)
                                .await
                                .map(drop),
                        }
                    }
                })
                .buffer_unordered(opts.concurrency.max(1))
                .try_collect::<Vec<()>>()
                .await
                .context("the floor client creating children")
        }
    };
    let create = async {
        let (s, j) = tokio::join!(create_all(services), create_all(jobs));
        s?;
        j?;
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (created, running) = tokio::join!(create, running);
    let create_only = created?;
    let running_wait = running?;
    let masters_running = running_wait.max(create_only);
    let load = meter.finish();
    let (records, window_end, counts) = floor_audit(cluster, window_start, n)?;
    Ok(Floor {
        create_only,
        masters_running,
        audited_creates: counts.child_creates,
        creates: CreateLatencies::measure(&records, &floor_user(), window_start, window_end),
        load,
        ..Floor::default()
    })
}
